//! The probe half of the free check, in the allocator's terms: could a server bind this port
//! right now? The probe itself is the firewall check's (`network::firewall`); here its two
//! per-family outcomes become one verdict. A family the host lacks is not a reason to refuse.

use crate::network::firewall::{self, BindOutcome, FamilyProbe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// What a probe bind found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Bindable on every family the host has.
    Free,
    /// Something holds the port (EADDRINUSE); the detail names the family.
    InUse { detail: String },
    /// Binding is refused (EACCES/EPERM): a privilege or firewall rule. Critical, not "in use".
    Blocked { detail: String },
    /// Neither family is usable on this host.
    NoFamily,
    /// Another error, reported as is.
    Failed { detail: String },
}

impl ProbeOutcome {
    pub fn is_free(&self) -> bool {
        matches!(self, ProbeOutcome::Free)
    }
}

/// Probe `port` on the IPv4 and IPv6 wildcards.
pub fn probe_port(port: u16) -> ProbeOutcome {
    let (v4, v6) = firewall::probe_port(port);
    verdict(port, [(Family::V4, v4), (Family::V6, v6)])
}

fn verdict(port: u16, probes: [(Family, FamilyProbe); 2]) -> ProbeOutcome {
    let detail = |family: Family, p: &FamilyProbe| {
        format!(
            "bind {family} port {port}: {}",
            p.error.as_deref().unwrap_or("refused")
        )
    };
    // Blocked outranks in use: it is the finding an operator must act on.
    for wanted in [
        BindOutcome::Blocked,
        BindOutcome::InUse,
        BindOutcome::Failed,
    ] {
        if let Some((family, p)) = probes.iter().find(|(_, p)| p.outcome == wanted) {
            let detail = detail(*family, p);
            return match wanted {
                BindOutcome::Blocked => ProbeOutcome::Blocked { detail },
                BindOutcome::InUse => ProbeOutcome::InUse { detail },
                _ => ProbeOutcome::Failed { detail },
            };
        }
    }
    if probes
        .iter()
        .any(|(_, p)| p.outcome == BindOutcome::Bindable)
    {
        ProbeOutcome::Free
    } else {
        ProbeOutcome::NoFamily
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_listening_port_is_in_use_and_a_closed_one_is_free() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(matches!(
            probe_port(port),
            ProbeOutcome::InUse { detail } if detail.contains("IPv4")
        ));
        drop(l);
        assert_eq!(probe_port(port), ProbeOutcome::Free);
    }

    #[test]
    fn an_ipv6_listener_is_seen() {
        let Ok(l) = TcpListener::bind("[::1]:0") else {
            return; // no IPv6 on this host: nothing to test
        };
        let port = l.local_addr().unwrap().port();
        assert!(matches!(
            probe_port(port),
            ProbeOutcome::InUse { detail } if detail.contains("IPv6")
        ));
    }

    #[test]
    fn an_absent_family_does_not_refuse_and_blocked_outranks_in_use() {
        let p = |outcome| FamilyProbe {
            outcome,
            error: Some("x".into()),
        };
        let ok = FamilyProbe {
            outcome: BindOutcome::Bindable,
            error: None,
        };
        assert_eq!(
            verdict(
                1,
                [
                    (Family::V4, ok.clone()),
                    (Family::V6, p(BindOutcome::FamilyAbsent))
                ]
            ),
            ProbeOutcome::Free
        );
        assert!(matches!(
            verdict(
                1,
                [
                    (Family::V4, p(BindOutcome::InUse)),
                    (Family::V6, p(BindOutcome::Blocked))
                ]
            ),
            ProbeOutcome::Blocked { detail } if detail.contains("IPv6")
        ));
        assert_eq!(
            verdict(
                1,
                [
                    (Family::V4, p(BindOutcome::FamilyAbsent)),
                    (Family::V6, p(BindOutcome::FamilyAbsent))
                ]
            ),
            ProbeOutcome::NoFamily
        );
    }
}
