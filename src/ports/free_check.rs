//! The probe half of the free check: could a server bind this port right now, on
//! IPv4 and IPv6? The errno is classified, because "in use", "blocked" and "family absent" call
//! for different answers.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
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
    /// Bind + listen succeeded on every family the host has.
    Free,
    /// Something holds the port (EADDRINUSE).
    InUse { family: Family, detail: String },
    /// Binding is refused (EACCES/EPERM): a privilege or firewall rule. Critical, not "in use".
    Blocked { family: Family, detail: String },
    /// Neither family is usable on this host.
    NoFamily,
    /// Another error, reported as is.
    Failed { family: Family, detail: String },
}

impl ProbeOutcome {
    pub fn is_free(&self) -> bool {
        matches!(self, ProbeOutcome::Free)
    }
}

enum One {
    Ok,
    Absent,
    Err(io::Error),
}

fn probe_family(family: Family, port: u16) -> One {
    let (domain, addr) = match family {
        Family::V4 => (
            Domain::IPV4,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ),
        Family::V6 => (
            Domain::IPV6,
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        ),
    };
    let attempt = || -> io::Result<()> {
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        // Services bind with SO_REUSEADDR (tokio, Python's socketserver and most servers do), so
        // TIME_WAIT leftovers must not make the port look taken; a live listener still does.
        socket.set_reuse_address(true)?;
        if family == Family::V6 {
            socket.set_only_v6(true)?;
        }
        // bind alone is the test: with SO_REUSEADDR on both sides Linux refuses the bind
        // exactly when another socket listens on the port, which is what a server would hit.
        socket.bind(&addr.into())
    };
    match attempt() {
        Ok(()) => One::Ok,
        Err(e) => match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT) => {
                One::Absent
            }
            _ => One::Err(e),
        },
    }
}

/// Probe `port` on IPv4 and IPv6 wildcards. A family the host lacks is not a reason to refuse.
pub fn probe_port(port: u16) -> ProbeOutcome {
    let mut any_family = false;
    for family in [Family::V4, Family::V6] {
        match probe_family(family, port) {
            One::Ok => any_family = true,
            One::Absent => {}
            One::Err(e) => {
                let detail = format!("bind {family} port {port}: {e}");
                return match e.raw_os_error() {
                    Some(libc::EADDRINUSE) => ProbeOutcome::InUse { family, detail },
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        ProbeOutcome::Blocked { family, detail }
                    }
                    _ => ProbeOutcome::Failed { family, detail },
                };
            }
        }
    }
    if any_family {
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
            ProbeOutcome::InUse {
                family: Family::V4,
                ..
            }
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
            ProbeOutcome::InUse {
                family: Family::V6,
                ..
            }
        ));
    }
}
