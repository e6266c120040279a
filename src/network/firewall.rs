//! Can the port be bound? A probe bind with SO_REUSEADDR on 0.0.0.0 and on [::] (IPV6_V6ONLY),
//! with the errno classified: EACCES/EPERM mean blocked (privileged port, LSM or
//! firewall hook: critical), EADDRINUSE means something holds the port, EADDRNOTAVAIL or
//! EAFNOSUPPORT mean the address family is absent.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use super::check::{names, CheckResult, CheckStatus};

/// Result of probing one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BindOutcome {
    /// bind succeeded (the probe socket was closed again).
    Bindable,
    /// EADDRINUSE: another socket holds the port.
    InUse,
    /// EACCES / EPERM: not allowed to bind this port.
    Blocked,
    /// EADDRNOTAVAIL / EAFNOSUPPORT: this address family is not configured.
    FamilyAbsent,
    /// Any other error.
    Failed,
}

impl BindOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            BindOutcome::Bindable => "bindable",
            BindOutcome::InUse => "in_use",
            BindOutcome::Blocked => "blocked",
            BindOutcome::FamilyAbsent => "family_absent",
            BindOutcome::Failed => "failed",
        }
    }
}

/// Classifies a bind error.
pub fn classify_bind_error(error: &io::Error) -> BindOutcome {
    match error.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => BindOutcome::Blocked,
        Some(libc::EADDRINUSE) => BindOutcome::InUse,
        Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT) | Some(libc::EPROTONOSUPPORT) => {
            BindOutcome::FamilyAbsent
        }
        _ => BindOutcome::Failed,
    }
}

/// Probe of one family: outcome plus the error text when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyProbe {
    pub outcome: BindOutcome,
    pub error: Option<String>,
}

fn probe_family(domain: Domain, address: SocketAddr) -> FamilyProbe {
    let attempt = || -> io::Result<()> {
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if domain == Domain::IPV6 {
            socket.set_only_v6(true)?;
        }
        // bind alone is the test: with SO_REUSEADDR on both sides Linux refuses it exactly when
        // another socket listens on the port (what a server would hit), while TIME_WAIT
        // leftovers do not count. Skipping listen() halves the probe's cost.
        socket.bind(&address.into())
    };
    match attempt() {
        Ok(()) => FamilyProbe {
            outcome: BindOutcome::Bindable,
            error: None,
        },
        Err(error) => FamilyProbe {
            outcome: classify_bind_error(&error),
            error: Some(error.to_string()),
        },
    }
}

/// Probes `port` on 0.0.0.0 and [::], returning `(ipv4, ipv6)`.
pub fn probe_port(port: u16) -> (FamilyProbe, FamilyProbe) {
    (
        probe_family(
            Domain::IPV4,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ),
        probe_family(
            Domain::IPV6,
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        ),
    )
}

/// The firewall check for `port`. Blocked on any family: critical. In use: info (the port is
/// taken, which is a fact about the port, not about the host's health). Both families absent or
/// failing: warning.
pub fn firewall(port: u16) -> CheckResult {
    let (v4, v6) = probe_port(port);
    let outcomes = [v4.outcome, v6.outcome];
    let blocked = outcomes.contains(&BindOutcome::Blocked);
    let in_use = outcomes.contains(&BindOutcome::InUse);
    let bindable = outcomes.contains(&BindOutcome::Bindable);
    let can_bind = bindable && !blocked && !in_use;

    let (status, note, recommendation) = if blocked {
        (
            CheckStatus::Critical,
            format!("Binding port {port} is not permitted (EACCES/EPERM)"),
            Some(format!(
                "Port {port} is privileged or blocked by policy: use a port >= \
                 net.ipv4.ip_unprivileged_port_start, grant CAP_NET_BIND_SERVICE, or fix the \
                 firewall/LSM rule"
            )),
        )
    } else if in_use {
        (
            CheckStatus::Info,
            format!("Port {port} is in use (EADDRINUSE)"),
            Some("Pick another port or stop the process holding it".to_string()),
        )
    } else if can_bind {
        (
            CheckStatus::Ok,
            "Port can be bound (firewall likely OK)".to_string(),
            None,
        )
    } else {
        (
            CheckStatus::Warning,
            format!("Port {port} could not be bound on any address family"),
            None,
        )
    };
    if status >= CheckStatus::Warning {
        tracing::warn!(port, ipv4 = ?v4, ipv6 = ?v6, "firewall probe failed");
    }
    let mut result = CheckResult::new(names::FIREWALL, status, note)
        .with_field("port", port)
        .with_field("can_bind", can_bind)
        .with_field("in_use", in_use)
        .with_field("blocked", blocked)
        .with_field("ipv4", v4.outcome.as_str())
        .with_field("ipv6", v6.outcome.as_str());
    let errors: Vec<String> = [("ipv4", &v4.error), ("ipv6", &v6.error)]
        .into_iter()
        .filter_map(|(family, error)| error.as_ref().map(|error| format!("{family}: {error}")))
        .collect();
    if !errors.is_empty() {
        result.set_field("errors", errors);
    }
    result.recommendation = recommendation;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_classified_as_the_design_says() {
        let outcome = |errno| classify_bind_error(&io::Error::from_raw_os_error(errno));
        assert_eq!(outcome(libc::EACCES), BindOutcome::Blocked);
        assert_eq!(outcome(libc::EPERM), BindOutcome::Blocked);
        assert_eq!(outcome(libc::EADDRINUSE), BindOutcome::InUse);
        assert_eq!(outcome(libc::EADDRNOTAVAIL), BindOutcome::FamilyAbsent);
        assert_eq!(outcome(libc::EAFNOSUPPORT), BindOutcome::FamilyAbsent);
        assert_eq!(outcome(libc::EINVAL), BindOutcome::Failed);
    }
}
