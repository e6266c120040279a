//! Can the port be bound? A probe bind with SO_REUSEADDR on 0.0.0.0 and on [::] (IPV6_V6ONLY),
//! with the errno classified: EACCES/EPERM mean blocked (privileged port, LSM or
//! firewall hook: critical), EADDRINUSE means something holds the port, EADDRNOTAVAIL or
//! EAFNOSUPPORT mean the address family is absent.
//!
//! On Windows the probe sets SO_EXCLUSIVEADDRUSE instead of SO_REUSEADDR: there SO_REUSEADDR
//! would let the probe bind *over* a listening socket and report a taken port free. An exclusive
//! bind fails (WSAEADDRINUSE) when any socket holds the port on any address, whatever options it
//! set, so "bindable" means a server binding the port now (plainly or exclusively) succeeds.
//! WSAEACCES is what Windows answers for a port held exclusively by another process or inside
//! an excluded port range (Hyper-V and WinNAT reserve some, `netsh int ipv4 show
//! excludedportrange tcp`): blocked, a finding about that port. Windows does not hold a port for
//! its TIME_WAIT connections, so as on Linux they do not make a port "in use".

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
    /// EMFILE / ENFILE / ENOMEM / ENOBUFS: this process could not make the probe socket, so it
    /// learnt nothing about the port.
    Unknown,
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
            BindOutcome::Unknown => "unknown",
            BindOutcome::Failed => "failed",
        }
    }
}

/// Classifies a bind error (Winsock's codes).
#[cfg(windows)]
pub fn classify_bind_error(error: &io::Error) -> BindOutcome {
    use windows_sys::Win32::Networking::WinSock::{
        WSAEACCES, WSAEADDRINUSE, WSAEADDRNOTAVAIL, WSAEAFNOSUPPORT, WSAEMFILE, WSAENOBUFS,
        WSAEPROTONOSUPPORT,
    };
    match error.raw_os_error() {
        Some(WSAEACCES) => BindOutcome::Blocked,
        Some(WSAEADDRINUSE) => BindOutcome::InUse,
        Some(WSAEADDRNOTAVAIL) | Some(WSAEAFNOSUPPORT) | Some(WSAEPROTONOSUPPORT) => {
            BindOutcome::FamilyAbsent
        }
        Some(WSAEMFILE) | Some(WSAENOBUFS) => BindOutcome::Unknown,
        _ => BindOutcome::Failed,
    }
}

/// Classifies a bind error.
#[cfg(not(windows))]
pub fn classify_bind_error(error: &io::Error) -> BindOutcome {
    match error.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => BindOutcome::Blocked,
        Some(libc::EADDRINUSE) => BindOutcome::InUse,
        Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT) | Some(libc::EPROTONOSUPPORT) => {
            BindOutcome::FamilyAbsent
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM) | Some(libc::ENOBUFS) => {
            BindOutcome::Unknown
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
        #[cfg(not(windows))]
        socket.set_reuse_address(true)?;
        #[cfg(windows)]
        portwarden_sockopt::exclusive_address_use(&socket)?;
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

/// What one probe of a port found, per family. The single source for both the firewall check
/// (reported fields) and the allocator's free check ([`PortProbe::finding`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProbe {
    pub port: u16,
    pub ipv4: FamilyProbe,
    pub ipv6: FamilyProbe,
}

/// The verdict on one port: could a server bind it now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortFinding {
    /// Bindable on every family the host has.
    Bindable,
    /// EADDRINUSE on some family: something listens there.
    InUse(String),
    /// EACCES/EPERM on some family: a critical finding about this port only.
    Blocked(String),
    /// Neither family could bind it for another reason (or the host has neither family).
    Unusable(String),
    /// The probe itself failed for lack of resources (descriptors, memory): nothing is known
    /// about the port.
    Unknown(String),
}

impl PortFinding {
    pub fn is_bindable(&self) -> bool {
        matches!(self, PortFinding::Bindable)
    }
}

/// Probes `port` on 0.0.0.0 and [::] (v6only).
pub fn probe(port: u16) -> PortProbe {
    PortProbe {
        port,
        ipv4: probe_family(
            Domain::IPV4,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ),
        ipv6: probe_family(
            Domain::IPV6,
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        ),
    }
}

impl PortProbe {
    fn families(&self) -> [(&'static str, &FamilyProbe); 2] {
        [("IPv4", &self.ipv4), ("IPv6", &self.ipv6)]
    }

    /// Blocked outranks in use (it is what an operator must act on), in use outranks another
    /// error; an absent family never refuses the port, but at least one family must bind.
    pub fn finding(&self) -> PortFinding {
        let port = self.port;
        let detail = |family: &str, p: &FamilyProbe| {
            format!(
                "bind {family} port {port}: {}",
                p.error.as_deref().unwrap_or("refused")
            )
        };
        for wanted in [
            BindOutcome::Blocked,
            BindOutcome::InUse,
            BindOutcome::Unknown,
            BindOutcome::Failed,
        ] {
            if let Some((family, p)) = self
                .families()
                .into_iter()
                .find(|(_, p)| p.outcome == wanted)
            {
                let detail = detail(family, p);
                return match wanted {
                    BindOutcome::Blocked => PortFinding::Blocked(detail),
                    BindOutcome::InUse => PortFinding::InUse(detail),
                    BindOutcome::Unknown => PortFinding::Unknown(detail),
                    _ => PortFinding::Unusable(detail),
                };
            }
        }
        if self
            .families()
            .iter()
            .any(|(_, p)| p.outcome == BindOutcome::Bindable)
        {
            PortFinding::Bindable
        } else {
            PortFinding::Unusable("neither IPv4 nor IPv6 is available on this host".into())
        }
    }

    /// The firewall check. Blocked on any family: critical. In use: info (the port is taken,
    /// which is a fact about the port, not about the host's health). Not bindable for another
    /// reason: warning.
    pub fn check(&self) -> CheckResult {
        let port = self.port;
        let finding = self.finding();
        let (status, note, recommendation) = match &finding {
            PortFinding::Blocked(_) => (
                CheckStatus::Critical,
                format!("Binding port {port} is not permitted (EACCES/EPERM)"),
                Some(format!(
                    "Port {port} is privileged or blocked by policy: use a port >= \
                     net.ipv4.ip_unprivileged_port_start, grant CAP_NET_BIND_SERVICE, or fix the \
                     firewall/LSM rule"
                )),
            ),
            PortFinding::InUse(_) => (
                CheckStatus::Info,
                format!("Port {port} is in use (EADDRINUSE)"),
                Some("Pick another port or stop the process holding it".to_string()),
            ),
            PortFinding::Bindable => (
                CheckStatus::Ok,
                "Port can be bound (firewall likely OK)".to_string(),
                None,
            ),
            PortFinding::Unusable(detail) => (
                CheckStatus::Warning,
                format!("Port {port} could not be bound: {detail}"),
                None,
            ),
            PortFinding::Unknown(detail) => (
                CheckStatus::Warning,
                format!("Port {port} could not be probed: {detail}"),
                Some("The daemon is short of descriptors or memory; see file_descriptors".into()),
            ),
        };
        if status >= CheckStatus::Warning {
            tracing::warn!(port, ipv4 = ?self.ipv4, ipv6 = ?self.ipv6, "firewall probe failed");
        }
        let mut result = CheckResult::new(names::FIREWALL, status, note)
            .with_field("port", port)
            .with_field("can_bind", finding.is_bindable())
            .with_field("in_use", matches!(finding, PortFinding::InUse(_)))
            .with_field("blocked", matches!(finding, PortFinding::Blocked(_)))
            .with_field("ipv4", self.ipv4.outcome.as_str())
            .with_field("ipv6", self.ipv6.outcome.as_str());
        let errors: Vec<String> = [("ipv4", &self.ipv4.error), ("ipv6", &self.ipv6.error)]
            .into_iter()
            .filter_map(|(family, error)| error.as_ref().map(|error| format!("{family}: {error}")))
            .collect();
        if !errors.is_empty() {
            result.set_field("errors", errors);
        }
        result.recommendation = recommendation;
        #[cfg(windows)]
        {
            result.set_field("source", "bind with SO_EXCLUSIVEADDRUSE");
            if matches!(finding, PortFinding::Blocked(_)) {
                result.note = format!("Binding port {port} is not permitted (WSAEACCES)");
                result.recommendation = Some(format!(
                    "Port {port} is held exclusively by another process or inside an excluded \
                     port range (netsh int ipv4 show excludedportrange tcp), or a firewall \
                     policy refuses it: pick a port outside those ranges"
                ));
            }
        }
        result
    }
}

/// The firewall check for `port`, probed now.
pub fn firewall(port: u16) -> CheckResult {
    probe(port).check()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn family(outcome: BindOutcome) -> FamilyProbe {
        let error = (outcome != BindOutcome::Bindable).then(|| "x".to_string());
        FamilyProbe { outcome, error }
    }

    fn finding(v4: BindOutcome, v6: BindOutcome) -> PortFinding {
        PortProbe {
            port: 1,
            ipv4: family(v4),
            ipv6: family(v6),
        }
        .finding()
    }

    #[test]
    fn a_listening_port_is_in_use_and_a_closed_one_is_bindable() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(matches!(probe(port).finding(), PortFinding::InUse(d) if d.contains("IPv4")));
        drop(l);
        assert_eq!(probe(port).finding(), PortFinding::Bindable);
    }

    #[test]
    fn an_ipv6_listener_is_seen() {
        let Ok(l) = TcpListener::bind("[::1]:0") else {
            return; // no IPv6 on this host: nothing to test
        };
        let port = l.local_addr().unwrap().port();
        assert!(matches!(probe(port).finding(), PortFinding::InUse(d) if d.contains("IPv6")));
    }

    #[test]
    fn an_absent_family_does_not_refuse_and_blocked_outranks_in_use() {
        use BindOutcome::*;
        assert_eq!(finding(Bindable, FamilyAbsent), PortFinding::Bindable);
        assert!(matches!(finding(InUse, Blocked), PortFinding::Blocked(d) if d.contains("IPv6")));
        assert!(matches!(
            finding(Bindable, Failed),
            PortFinding::Unusable(_)
        ));
        assert!(matches!(
            finding(FamilyAbsent, FamilyAbsent),
            PortFinding::Unusable(_)
        ));
    }

    #[cfg(windows)]
    #[test]
    fn winsock_errors_are_classified_as_the_design_says() {
        use windows_sys::Win32::Networking::WinSock::*;
        let outcome = |code| classify_bind_error(&io::Error::from_raw_os_error(code));
        assert_eq!(outcome(WSAEACCES), BindOutcome::Blocked);
        assert_eq!(outcome(WSAEADDRINUSE), BindOutcome::InUse);
        assert_eq!(outcome(WSAEADDRNOTAVAIL), BindOutcome::FamilyAbsent);
        assert_eq!(outcome(WSAEMFILE), BindOutcome::Unknown);
        assert_eq!(outcome(WSAEINVAL), BindOutcome::Failed);
    }

    #[cfg(not(windows))]
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
