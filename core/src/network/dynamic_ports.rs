//! Windows' dynamic (ephemeral) TCP port range, what `ip_local_port_range` is on Linux: read
//! from `netsh interface ipv4 show dynamicportrange tcp` (the range lives in the TCP/IP stack's
//! own store, with no API to read it), kept for a minute, and Windows' default 49152-65535 when
//! netsh cannot say. The check reports which (`range_source`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Windows' default since Vista (IANA's dynamic ports).
pub const DEFAULT_RANGE: (u16, u16) = (49152, 65535);
/// How long a reading is reused: the range changes only by an administrator's netsh command.
const KEEP: Duration = Duration::from_secs(60);

/// The range and where it came from (`netsh`, or `default` with the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicRange {
    pub low: u16,
    pub high: u16,
    pub source: String,
}

/// The dynamic TCP port range for IPv4, at most a minute old.
pub fn dynamic_port_range() -> DynamicRange {
    static CACHE: Mutex<Option<(Instant, DynamicRange)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, range)) = cache.as_ref() {
        if at.elapsed() < KEEP {
            return range.clone();
        }
    }
    let range = read_netsh();
    *cache = Some((Instant::now(), range.clone()));
    range
}

fn read_netsh() -> DynamicRange {
    use std::os::windows::process::CommandExt;
    /// No console window flashes up when a service runs it.
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    let output = std::process::Command::new("netsh")
        .args(["interface", "ipv4", "show", "dynamicportrange", "tcp"])
        .creation_flags(CREATE_NO_WINDOW)
        .output();
    let fallback = |why: String| DynamicRange {
        low: DEFAULT_RANGE.0,
        high: DEFAULT_RANGE.1,
        source: format!("default ({why})"),
    };
    match output {
        Ok(out) if out.status.success() => match parse_netsh(&String::from_utf8_lossy(&out.stdout))
        {
            Some((low, high)) => DynamicRange {
                low,
                high,
                source: "netsh".into(),
            },
            None => fallback("netsh printed no port range".into()),
        },
        Ok(out) => fallback(format!("netsh exited with {}", out.status)),
        Err(e) => fallback(format!("cannot run netsh: {e}")),
    }
}

/// netsh prints "Start Port : 49152" and "Number of Ports : 16384" (the labels are localized;
/// the numbers come in that order): the first two numbers after a colon.
pub fn parse_netsh(text: &str) -> Option<(u16, u16)> {
    let mut numbers = text.lines().filter_map(|line| {
        let (_, value) = line.split_once(':')?;
        value.trim().parse::<u32>().ok()
    });
    let start = numbers.next()?;
    let count = numbers.next()?;
    let high = start.checked_add(count)?.checked_sub(1)?;
    (count > 0 && high <= u32::from(u16::MAX)).then(|| (start as u16, high as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netsh_output_is_read_and_nonsense_is_not() {
        let text = "\r\nProtocol tcp Dynamic Port Range\r\n---------------------------------\r\n\
                    Start Port      : 49152\r\nNumber of Ports : 16384\r\n";
        assert_eq!(parse_netsh(text), Some((49152, 65535)));
        assert_eq!(
            parse_netsh("Startport : 10000\nAnzahl Ports : 1000\n"),
            Some((10000, 10999))
        );
        assert_eq!(
            parse_netsh("Start Port : 60000\nNumber of Ports : 16384\n"),
            None
        );
        assert_eq!(parse_netsh("fixme: not implemented\n"), None);
    }

    #[test]
    fn the_range_is_always_a_range() {
        let range = dynamic_port_range();
        assert!(range.low <= range.high, "{range:?}");
        assert!(range.source == "netsh" || range.source.starts_with("default"));
    }
}
