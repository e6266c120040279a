//! What refuses an allocation outright: the checks of `blocking_checks`, when critical. By
//! default these are the ones that make a port useless to any service: IPv4 unavailable, the
//! port itself cannot be bound (`firewall`), the network interfaces (loopback) down. Other
//! critical findings (ephemeral ports nearly used up by outgoing connections, an expiring
//! certificate, ...) come back with the allocation and are logged, but do not refuse it: on a
//! busy shared host they are somebody else's problem, not the managed range's.

use std::collections::BTreeSet;

use super::check::{names, CheckResult, CheckStatus};
use super::report::Report;

/// The blocking set of a daemon that was not told otherwise.
pub const DEFAULT_BLOCKING: [&str; 3] = [
    names::IPV4_AVAILABLE,
    names::FIREWALL,
    names::NETWORK_INTERFACES,
];

/// Every check a report can hold.
pub const CHECK_NAMES: [&str; 12] = [
    names::IPV4_AVAILABLE,
    names::IPV6_AVAILABLE,
    names::SOCKET_REUSE,
    names::FILE_DESCRIPTORS,
    names::NETWORK_INTERFACES,
    names::FIREWALL,
    names::TIME_WAIT_SOCKETS,
    names::CONNECTION_LIMITS,
    names::DNS_RESOLUTION,
    names::PORT_EXHAUSTION,
    names::SSL_READINESS,
    names::LISTEN_OVERFLOWS,
];

/// The checks whose critical finding refuses an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingChecks(BTreeSet<String>);

impl Default for BlockingChecks {
    fn default() -> Self {
        Self(DEFAULT_BLOCKING.iter().map(|s| s.to_string()).collect())
    }
}

impl BlockingChecks {
    /// From check names; an unknown name is an error naming the known ones. `none` (alone) or
    /// an empty list: nothing refuses.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for name in list.iter().map(|s| s.as_ref().trim()) {
            if name.is_empty() || (name == "none" && list.len() == 1) {
                continue;
            }
            if !CHECK_NAMES.contains(&name) {
                return Err(format!(
                    "'{}' is not a check (one of: {})",
                    crate::text::printable(name),
                    CHECK_NAMES.join(", ")
                ));
            }
            set.insert(name.to_string());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    /// The critical checks among `checks` that refuse allocation.
    pub fn refusing<'a>(&self, checks: &'a [CheckResult]) -> Vec<&'a CheckResult> {
        checks
            .iter()
            .filter(|c| c.status == CheckStatus::Critical && self.contains(&c.name))
            .collect()
    }
}

/// One finding with its numbers and its fix: "port_exhaustion: Ephemeral port usage 82.0%
/// (26871 of 32768); fix: pool connections, ...".
pub fn explain(c: &CheckResult) -> String {
    match c
        .recommendation
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "OK")
    {
        Some(fix) => format!("{}: {}; fix: {fix}", c.name, c.note),
        None => format!("{}: {}", c.name, c.note),
    }
}

/// The refusing findings of `report` (named in `blocking`), explained, one after the other.
pub fn explain_all(report: &Report, blocking: &[String]) -> String {
    let parts: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Critical && blocking.contains(&c.name))
        .map(explain)
        .collect();
    format!(
        "{} (these checks refuse allocations when critical: blocking_checks = [{}])",
        parts.join("; "),
        blocking.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_start_up_list_and_unknown_names_are_refused() {
        let d = BlockingChecks::default();
        assert_eq!(
            d.names(),
            ["firewall", "ipv4_available", "network_interfaces"]
        );
        assert!(!d.contains("port_exhaustion"));
        let err = BlockingChecks::parse(&["ipv4", "firewall"]).unwrap_err();
        assert!(err.contains("'ipv4' is not a check"), "{err}");
        assert_eq!(BlockingChecks::parse(&["none"]).unwrap().names().len(), 0);
    }

    #[test]
    fn only_listed_criticals_refuse_and_the_message_carries_numbers_and_fix() {
        let exhausted = CheckResult::new(
            names::PORT_EXHAUSTION,
            CheckStatus::Critical,
            "Ephemeral port usage 82.0% (26871 of 32768)",
        )
        .with_recommendation("widen net.ipv4.ip_local_port_range");
        let checks = vec![exhausted.clone()];
        assert!(BlockingChecks::default().refusing(&checks).is_empty());
        let strict = BlockingChecks::parse(&["port_exhaustion"]).unwrap();
        assert_eq!(strict.refusing(&checks).len(), 1);
        assert_eq!(
            explain(&exhausted),
            "port_exhaustion: Ephemeral port usage 82.0% (26871 of 32768); fix: widen net.ipv4.ip_local_port_range"
        );
    }
}
