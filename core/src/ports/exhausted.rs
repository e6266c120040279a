//! The "range is full" answer as one paragraph a person can act on: who holds the ports (the
//! five biggest holders; the full list travels in the error's details), what is resting in
//! quarantine and when the first of it frees, and how to get more ports.

use super::pool::Pool;

/// How many holders the message names; the rest are counted.
const NAMED_HOLDERS: usize = 5;

/// "no free port in 8000-8100 (101 ports): 98 held by 12 services (web 40, api 30, ...), ...".
#[allow(clippy::too_many_arguments)]
pub(super) fn describe(
    pool: Pool,
    ranges: &str,
    total: usize,
    held: usize,
    holders: &[(String, usize)],
    quarantined: usize,
    first_free_in_ms: Option<u64>,
    unavailable: usize,
) -> String {
    let mut parts = Vec::new();
    if held > 0 {
        let named: Vec<String> = holders
            .iter()
            .take(NAMED_HOLDERS)
            .map(|(service, n)| format!("{} {n}", crate::text::printable(service)))
            .collect();
        let more = holders.len().saturating_sub(NAMED_HOLDERS);
        let tail = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        parts.push(format!(
            "{held} held by {} ({}{tail})",
            plural(holders.len(), "service", "services"),
            named.join(", ")
        ));
    }
    if quarantined > 0 {
        let when = first_free_in_ms
            .map(|ms| format!(", the first is free again in {}", seconds(ms)))
            .unwrap_or_default();
        parts.push(format!("{quarantined} resting after release{when}"));
    }
    if unavailable > 0 {
        parts.push(format!(
            "{unavailable} in use outside portwarden or refused by the host"
        ));
    }
    match pool {
        Pool::Service => format!(
            "no free port in {ranges} ({}): {}. Release ports that are no longer needed \
             (portwarden list shows them), or give the daemon more ports: --range is repeatable \
             (--range {ranges} --range 9000-9100; PORTWARDEN_RANGE, or range in the config file)",
            plural(total, "port", "ports"),
            parts.join(", ")
        ),
        Pool::Test => format!(
            "no free port in the test pool {ranges} ({}): {}. Test processes' ports come back \
             when they exit; release the others (portwarden list shows them), or give the pool \
             more ports: --test-range is repeatable (PORTWARDEN_TEST_RANGE, or test_range in the \
             config file)",
            plural(total, "port", "ports"),
            parts.join(", ")
        ),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whole seconds, rounded up: "0 s" would say "now" when it is not.
fn seconds(ms: u64) -> String {
    format!("{} s", ms.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_paragraph_names_the_top_five_holders_and_when_quarantine_ends() {
        let holders: Vec<(String, usize)> = [("web", 40), ("api", 30), ("db", 10), ("cache", 9)]
            .into_iter()
            .chain([("jobs", 5), ("mail", 2), ("dns", 1)])
            .map(|(s, n)| (s.to_string(), n))
            .collect();
        let text = describe(
            Pool::Service,
            "8000-8100",
            101,
            97,
            &holders,
            3,
            Some(41_200),
            1,
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with("no free port in 8000-8100 (101 ports): 97 held by 7 services (web 40, api 30, db 10, cache 9, jobs 5, and 2 more)"),
            "{text}"
        );
        assert!(
            text.contains("3 resting after release, the first is free again in 42 s"),
            "{text}"
        );
        assert!(text.contains("1 in use outside portwarden"), "{text}");
        assert!(text.contains("--range is repeatable"), "{text}");
        assert!(
            !text.contains("mail"),
            "only five holders are named: {text}"
        );
        let test = describe(
            Pool::Test,
            "15000-24999",
            10_000,
            10_000,
            &holders,
            0,
            None,
            0,
        );
        assert!(
            test.starts_with("no free port in the test pool 15000-24999 (10000 ports)"),
            "{test}"
        );
        assert!(test.contains("--test-range"), "{test}");
    }
}
