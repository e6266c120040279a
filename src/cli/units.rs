//! Durations on the command line carry their unit: `--ttl 5` could mean five seconds or five
//! minutes, and a lease that dies 55 minutes early is a bad way to find out which.

use std::time::Duration;

use super::commands::CliError;

/// `500ms`, `30s`, `5m`, `1h`, `7d`; a bare number is refused.
pub fn parse_duration(field: &'static str, text: &str) -> Result<Duration, CliError> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return Err(CliError::Usage {
            field,
            rule: format!("'{t}' needs a unit: {t}s, {t}m or {t}h"),
        });
    }
    crate::config::parse_duration(t).map_err(|rule| CliError::Usage { field, rule })
}

/// A lease length: whole seconds, at least one.
pub fn parse_ttl(field: &'static str, text: &str) -> Result<u64, CliError> {
    let d = parse_duration(field, text)?;
    if d < Duration::from_secs(1) {
        return Err(CliError::Usage {
            field,
            rule: format!("'{}' is shorter than the shortest lease, 1s", text.trim()),
        });
    }
    Ok(d.as_secs())
}

/// "2h 5m", "3m 10s", "42s": how long, for people.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (big, unit, small, small_unit) = match s {
        0..=59 => return format!("{s}s"),
        60..=3599 => (s / 60, "m", s % 60, "s"),
        3600..=86_399 => (s / 3600, "h", s % 3600 / 60, "m"),
        _ => (s / 86_400, "d", s % 86_400 / 3600, "h"),
    };
    if small == 0 {
        format!("{big}{unit}")
    } else {
        format!("{big}{unit} {small}{small_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_needs_a_unit_and_a_second_at_least() {
        assert_eq!(parse_ttl("--ttl", "5m").unwrap(), 300);
        assert_eq!(parse_ttl("--ttl", "90s").unwrap(), 90);
        let bare = parse_ttl("--ttl", "5").unwrap_err().to_string();
        assert!(bare.contains("'5' needs a unit: 5s, 5m or 5h"), "{bare}");
        let short = parse_ttl("--ttl", "500ms").unwrap_err().to_string();
        assert!(short.contains("shortest lease"), "{short}");
        assert!(parse_ttl("--ttl", "5 parsecs").is_err());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(human(Duration::from_secs(90_000)), "1d 1h");
        assert_eq!(human(Duration::from_secs(300)), "5m");
    }
}
