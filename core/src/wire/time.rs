//! The one timestamp format of the wire.

/// RFC 3339 UTC with exactly three fractional digits (`2026-12-03T23:45:30.070Z`) of a wall
/// time in milliseconds since the Unix epoch. Fixed width, so the strings sort as the times do.
pub fn timestamp(wall_ms: i64) -> String {
    let secs = wall_ms.div_euclid(1000);
    let millis = wall_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm): no allocation, no failure for any i64 day.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::timestamp;

    #[test]
    fn timestamps_have_exactly_three_fractional_digits() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(timestamp(1_764_805_530_070), "2025-12-03T23:45:30.070Z");
        assert_eq!(timestamp(1_795_824_000_999), "2026-11-28T00:00:00.999Z");
        assert_eq!(timestamp(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn it_agrees_with_the_time_crate() {
        use ::time::format_description::well_known::Rfc3339;
        for ms in [1_i64, 86_399_999, 1_700_000_000_123, 4_102_444_800_000] {
            let t = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap();
            let theirs = t.format(&Rfc3339).unwrap();
            assert_eq!(&timestamp(ms)[..19], &theirs[..19], "{ms}");
        }
    }
}
