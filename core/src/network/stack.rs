//! IP stack checks: can TCP sockets be created and bound on IPv4 and IPv6 loopback, and which
//! socket hardening options (SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, TCP_NODELAY) are supported.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::check::{names, CheckResult, CheckStatus};

fn bind_loopback(domain: Domain, address: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if domain == Domain::IPV6 {
        socket.set_only_v6(true)?;
    }
    socket.bind(&address.into())
}

/// IPv4: create a TCP socket and bind 127.0.0.1:0. Missing IPv4 is critical.
pub fn ipv4_available() -> CheckResult {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    match bind_loopback(Domain::IPV4, address) {
        Ok(()) => CheckResult::new(
            names::IPV4_AVAILABLE,
            CheckStatus::Ok,
            "IPv4 TCP sockets can be created and bound",
        )
        .with_field("available", true),
        Err(error) => {
            tracing::warn!(%error, "IPv4 TCP socket unavailable");
            CheckResult::new(
                names::IPV4_AVAILABLE,
                CheckStatus::Critical,
                format!("IPv4 not available: {error}"),
            )
            .with_field("available", false)
            .with_field("error", error.to_string())
            .with_recommendation("Enable IPv4 on this host; portwarden's services bind IPv4")
        }
    }
}

/// IPv6: create a TCP socket and bind [::1]:0. Missing IPv6 is a warning (IPv4 still works).
pub fn ipv6_available() -> CheckResult {
    let address = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
    match bind_loopback(Domain::IPV6, address) {
        Ok(()) => CheckResult::new(
            names::IPV6_AVAILABLE,
            CheckStatus::Ok,
            "IPv6 TCP sockets can be created and bound",
        )
        .with_field("available", true),
        Err(error) => CheckResult::new(
            names::IPV6_AVAILABLE,
            CheckStatus::Warning,
            "IPv6 not available (not critical)",
        )
        .with_field("available", false)
        .with_field("error", error.to_string())
        .with_recommendation("Services fall back to IPv4; enable IPv6 if clients need it"),
    }
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn supports_reuse_port(socket: &Socket) -> bool {
    socket.set_reuse_port(true).is_ok() && socket.reuse_port().unwrap_or(false)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn supports_reuse_port(_socket: &Socket) -> bool {
    false
}

/// Socket option support, tested by setting each option on a fresh TCP socket and reading it
/// back. SO_REUSEPORT missing is info; any other option missing is a warning.
pub fn socket_reuse() -> CheckResult {
    let socket = match Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)) {
        Ok(socket) => socket,
        Err(error) => {
            return CheckResult::new(
                names::SOCKET_REUSE,
                CheckStatus::Warning,
                format!("cannot create a TCP socket to test options: {error}"),
            )
            .with_field("error", error.to_string())
        }
    };
    let reuse_address =
        socket.set_reuse_address(true).is_ok() && socket.reuse_address().unwrap_or(false);
    let reuse_port = supports_reuse_port(&socket);
    let keepalive = socket.set_keepalive(true).is_ok() && socket.keepalive().unwrap_or(false);
    let nodelay = socket.set_tcp_nodelay(true).is_ok() && socket.tcp_nodelay().unwrap_or(false);

    let mut result = CheckResult::new(
        names::SOCKET_REUSE,
        CheckStatus::Ok,
        "Socket reuse options available",
    )
    .with_field("SO_REUSEADDR", reuse_address)
    .with_field("SO_REUSEPORT", reuse_port)
    .with_field("SO_KEEPALIVE", keepalive)
    .with_field("TCP_NODELAY", nodelay);
    let missing: Vec<&str> = [
        ("SO_REUSEADDR", reuse_address),
        ("SO_KEEPALIVE", keepalive),
        ("TCP_NODELAY", nodelay),
    ]
    .into_iter()
    .filter_map(|(name, supported)| (!supported).then_some(name))
    .collect();
    if !missing.is_empty() {
        result.escalate(
            CheckStatus::Warning,
            format!("socket options unavailable: {}", missing.join(", ")),
        );
        result.recommendation =
            Some("Services cannot harden their sockets; check the kernel".into());
    } else if !reuse_port {
        result.escalate(
            CheckStatus::Info,
            if cfg!(windows) {
                "SO_REUSEPORT not available (Windows)"
            } else {
                "SO_REUSEPORT not available; SO_REUSEADDR is"
            },
        );
    }
    result
}
