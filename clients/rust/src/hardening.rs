//! The socket hardening list for a server's listening socket: `SO_REUSEADDR` (restart without
//! waiting out TIME_WAIT), `SO_KEEPALIVE` (find dead peers), `TCP_NODELAY` (no Nagle delay) and
//! 64 KiB send and receive buffers. On Linux accepted connections inherit all four from the
//! listener.
//!
//! The list's 30 s timeout belongs to accepted connections, not to the listener: on a listener
//! `SO_RCVTIMEO` would make a blocking `accept()` fail after 30 idle seconds. Give each accepted
//! stream its timeout with [`harden_accepted`] (or `set_read_timeout`/`set_write_timeout`).
//!
//! `SO_REUSEPORT` is reported, never set: it would let another socket of the same uid bind the
//! same port and take a share of its connections, the very race a managed port exists to close.
//! Some platforms lack it; the report says so and nothing fails.
//!
//! On Windows `SO_REUSEADDR` means something else: it lets a second socket bind a port that
//! another socket is listening on and take over its connections. There the listener gets
//! `SO_EXCLUSIVEADDRUSE` instead (no other socket may bind the port while it is open; a
//! restarting server does not need `SO_REUSEADDR` there, Windows does not hold a port for its
//! TIME_WAIT connections), and `SO_REUSEADDR` is reported as not set, with the reason.
//!
//! ```no_run
//! let (listener, applied) = portwarden_client::bind_hardened(8000)?;
//! println!("{applied}");
//! for stream in listener.incoming() {
//!     let stream = stream?;
//!     portwarden_client::harden_accepted(&stream)?;
//!     // ... serve it
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Send and receive buffer size requested (64 KiB).
pub const BUFFER_BYTES: usize = 64 * 1024;
/// The timeout for accepted connections.
pub const ACCEPTED_TIMEOUT: Duration = Duration::from_secs(30);
/// Pending connections the kernel queues for `accept()` (capped by net.core.somaxconn).
pub const BACKLOG: i32 = 1024;

/// One option and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOption {
    /// `SO_REUSEADDR`, `SO_KEEPALIVE`, `TCP_NODELAY`, `SO_SNDBUF`, `SO_RCVBUF`, `SO_REUSEPORT`.
    pub name: &'static str,
    /// Whether the socket now has it (for `SO_REUSEPORT`: always false, it is never set).
    pub applied: bool,
    /// What the kernel said: the value read back, the error, or why it was left alone.
    pub detail: String,
}

/// What [`harden`] could apply, option by option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardening {
    pub options: Vec<SocketOption>,
}

impl Hardening {
    /// Whether `name` was applied.
    pub fn applied(&self, name: &str) -> bool {
        self.options.iter().any(|o| o.name == name && o.applied)
    }

    /// Whether every option of the hardening list was applied (`SO_REUSEPORT` is not on it; on
    /// Windows `SO_EXCLUSIVEADDRUSE` stands in for `SO_REUSEADDR`).
    pub fn complete(&self) -> bool {
        [
            ADDRESS_OPTION,
            "SO_KEEPALIVE",
            "TCP_NODELAY",
            "SO_SNDBUF",
            "SO_RCVBUF",
        ]
        .iter()
        .all(|n| self.applied(n))
    }

    fn push(&mut self, name: &'static str, outcome: io::Result<String>) {
        let (applied, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(e) => (false, e.to_string()),
        };
        self.options.push(SocketOption {
            name,
            applied,
            detail,
        });
    }
}

impl fmt::Display for Hardening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, o) in self.options.iter().enumerate() {
            let mark = if o.applied { '✓' } else { '-' };
            let sep = if i + 1 < self.options.len() { "\n" } else { "" };
            write!(f, "{mark} {}: {}{sep}", o.name, o.detail)?;
        }
        Ok(())
    }
}

/// Applies the hardening to `socket` (before `bind` for `SO_REUSEADDR` to matter) and says what
/// took. Never fails: an option the platform refuses is reported as not applied.
pub fn harden(socket: &Socket) -> Hardening {
    let mut h = Hardening::default();
    #[cfg(not(windows))]
    h.push(
        "SO_REUSEADDR",
        socket.set_reuse_address(true).map(|()| "on".into()),
    );
    #[cfg(windows)]
    {
        h.push(
            "SO_EXCLUSIVEADDRUSE",
            portwarden_sockopt::exclusive_address_use(socket).map(|()| "on".into()),
        );
        h.options.push(SocketOption {
            name: "SO_REUSEADDR",
            applied: false,
            detail: "not set: on Windows it would let another socket take over the port".into(),
        });
    }
    h.push(
        "SO_KEEPALIVE",
        socket.set_keepalive(true).map(|()| "on".into()),
    );
    h.push(
        "TCP_NODELAY",
        socket.set_tcp_nodelay(true).map(|()| "on".into()),
    );
    h.push(
        "SO_SNDBUF",
        socket
            .set_send_buffer_size(BUFFER_BYTES)
            .and_then(|()| socket.send_buffer_size())
            .map(buffer_detail),
    );
    h.push(
        "SO_RCVBUF",
        socket
            .set_recv_buffer_size(BUFFER_BYTES)
            .and_then(|()| socket.recv_buffer_size())
            .map(buffer_detail),
    );
    h.options.push(SocketOption {
        name: "SO_REUSEPORT",
        applied: false,
        detail: if reuse_port_available(socket) {
            "available, not set (another socket of this uid could share the port)".into()
        } else if cfg!(windows) {
            "not available (Windows)".into()
        } else {
            "not available on this platform".into()
        },
    });
    h
}

/// The option that keeps other sockets off a listener's port: `SO_REUSEADDR` means that on
/// Unix (with it two sockets cannot both listen), `SO_EXCLUSIVEADDRUSE` on Windows.
#[cfg(not(windows))]
const ADDRESS_OPTION: &str = "SO_REUSEADDR";
#[cfg(windows)]
const ADDRESS_OPTION: &str = "SO_EXCLUSIVEADDRUSE";

fn buffer_detail(actual: usize) -> String {
    if actual >= 2 * BUFFER_BYTES {
        // Linux doubles the request to leave room for its own bookkeeping.
        format!("{BUFFER_BYTES} bytes requested, kernel reports {actual}")
    } else {
        format!("{actual} bytes")
    }
}

#[cfg(not(any(
    target_os = "solaris",
    target_os = "illumos",
    target_os = "cygwin",
    target_os = "nuttx",
    target_os = "wasi",
    windows
)))]
fn reuse_port_available(socket: &Socket) -> bool {
    socket.reuse_port().is_ok()
}

#[cfg(any(
    target_os = "solaris",
    target_os = "illumos",
    target_os = "cygwin",
    target_os = "nuttx",
    target_os = "wasi",
    windows
))]
fn reuse_port_available(_: &Socket) -> bool {
    false
}

/// A hardened listener on `port` for every address: IPv6 and IPv4 on one socket (`[::]` with
/// IPV6_V6ONLY off), or IPv4 alone (`0.0.0.0`) where the host has no IPv6.
pub fn bind_hardened(port: u16) -> io::Result<(TcpListener, Hardening)> {
    match bind_hardened_on(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Err(e) if ipv6_missing(&e) => {
            bind_hardened_on(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        }
        other => other,
    }
}

#[cfg(not(windows))]
fn ipv6_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT)
    )
}

#[cfg(windows)]
fn ipv6_missing(e: &io::Error) -> bool {
    use windows_sys::Win32::Networking::WinSock::{
        WSAEADDRNOTAVAIL, WSAEAFNOSUPPORT, WSAEPROTONOSUPPORT,
    };
    matches!(
        e.raw_os_error(),
        Some(WSAEAFNOSUPPORT) | Some(WSAEADDRNOTAVAIL) | Some(WSAEPROTONOSUPPORT)
    )
}

/// A hardened listener on `addr` (an unspecified IPv6 address also takes IPv4 connections).
pub fn bind_hardened_on(addr: SocketAddr) -> io::Result<(TcpListener, Hardening)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    let hardening = harden(&socket);
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok((socket.into(), hardening))
}

/// The 30 s timeout on an accepted connection: reads and writes that stall longer fail
/// with `WouldBlock`/`TimedOut` instead of hanging the server.
pub fn harden_accepted(stream: &TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(ACCEPTED_TIMEOUT))?;
    stream.set_write_timeout(Some(ACCEPTED_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_hardened_listener_applies_the_list_and_its_connections_inherit_it() {
        let (listener, applied) = bind_hardened(0).expect("bind");
        assert!(applied.complete(), "{applied}");
        assert!(!applied.applied("SO_REUSEPORT"));
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("IPv4 reaches it");
        let (server, _) = listener.accept().unwrap();
        harden_accepted(&server).unwrap();
        let s = socket2::SockRef::from(&server);
        assert!(s.keepalive().unwrap() && s.tcp_nodelay().unwrap());
        assert_eq!(server.read_timeout().unwrap(), Some(ACCEPTED_TIMEOUT));
        client.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        (&server).read_exact(&mut b).unwrap();
        if let Ok(v6) = TcpStream::connect(("::1", port)) {
            drop(v6); // dual-stack where the host has IPv6
        }
    }

    #[test]
    fn a_taken_port_is_an_error_not_a_shared_socket() {
        let (first, _) = bind_hardened(0).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind_hardened(port).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
