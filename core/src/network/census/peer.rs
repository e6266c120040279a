//! Who is at the other end of a loopback TCP connection: the kernel keeps the peer's socket
//! too, with the uid that owns it. One exact sock_diag lookup (no dump) by the connection's
//! four-tuple, as identd answered it: a local caller over TCP is identified like one over the
//! Unix socket (SO_PEERCRED), and the addresses must match exactly, so a second connection with
//! the same ports from another loopback address is never confused with it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[cfg(target_os = "linux")]
use super::netlink::{
    open_sock_diag, read_u16, read_u32, receive, send_request, INET_DIAG_MSG_INODE,
    INET_DIAG_MSG_UID, INET_DIAG_REQ_V2_LEN, NLMSG_HDRLEN, SOCK_DIAG_BY_FAMILY,
};
/// `INET_DIAG_NOCOOKIE`: match by addresses and ports, not by a socket cookie.
#[cfg(target_os = "linux")]
const NO_COOKIE: u32 = u32::MAX;

/// Both ends as IPv4 when they are IPv4-mapped IPv6 addresses (a dual-stack listener sees a
/// v4 client as ::ffff:a.b.c.d; the client's own socket is AF_INET).
#[cfg(target_os = "linux")]
fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

#[cfg(target_os = "linux")]
fn put_addr(out: &mut Vec<u8>, ip: IpAddr) {
    let mut words = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => words[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => words.copy_from_slice(&v6.octets()),
    }
    out.extend_from_slice(&words);
}

/// What the kernel says of the client's end of a loopback connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A live socket held by a process of this uid.
    Uid(u32),
    /// No live socket at the four-tuple: the client closed or reset before we looked (or the
    /// connection came through a proxy or another namespace). Nobody can be named.
    Gone,
}

/// TCP states (include/net/tcp_states.h) in which the client's socket may still be held by the
/// process that made the connection.
#[cfg(target_os = "linux")]
const TCP_ESTABLISHED: u8 = 1;
#[cfg(target_os = "linux")]
const TCP_FIN_WAIT1: u8 = 4;
#[cfg(target_os = "linux")]
const TCP_FIN_WAIT2: u8 = 5;

/// Whether a sock_diag answer describes a socket a process still holds: its uid is then that
/// process's. A TIME_WAIT or orphaned socket (closed by its process: inode 0) says uid 0,
/// which is nobody's word.
#[cfg(target_os = "linux")]
fn is_held(state: u8, inode: u32) -> bool {
    inode != 0 && matches!(state, TCP_ESTABLISHED | TCP_FIN_WAIT1 | TCP_FIN_WAIT2)
}

/// Who holds the socket whose local end is `peer` and remote end is `ours` (the client's side
/// of a connection we accepted). An error is "cannot tell", never a verdict.
#[cfg(target_os = "linux")]
pub fn peer_uid(ours: SocketAddr, peer: SocketAddr) -> io::Result<Peer> {
    let (ours, peer) = (canonical(ours), canonical(peer));
    let family = match (peer.ip(), ours.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
        _ => return Ok(Peer::Gone),
    };
    let socket = open_sock_diag()?;
    let mut m = Vec::with_capacity(NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN);
    m.extend_from_slice(&((NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    // A request without NLM_F_DUMP: the kernel looks up exactly one socket.
    m.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family as u8, libc::IPPROTO_TCP as u8, 0, 0]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    // inet_diag_sockid: ports and addresses in network byte order, interface, cookie.
    m.extend_from_slice(&peer.port().to_be_bytes());
    m.extend_from_slice(&ours.port().to_be_bytes());
    put_addr(&mut m, peer.ip());
    put_addr(&mut m, ours.ip());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    m.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    send_request(&socket, &m)?;
    let mut buffer = [0u8; 8192];
    let n = receive(&socket, &mut buffer)?;
    let data = &buffer[..n];
    if data.len() < NLMSG_HDRLEN {
        return Err(io::Error::other("short sock_diag reply"));
    }
    let kind = read_u16(data, 4);
    let payload = &data[NLMSG_HDRLEN..];
    if i32::from(kind) == libc::NLMSG_ERROR {
        let code = payload
            .get(..4)
            .map(|b| read_u32(b, 0) as i32)
            .unwrap_or(-libc::EIO);
        return match -code {
            0 | libc::ENOENT => Ok(Peer::Gone),
            errno => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    if kind != SOCK_DIAG_BY_FAMILY || payload.len() < INET_DIAG_MSG_INODE + 4 {
        return Err(io::Error::other("unexpected sock_diag reply"));
    }
    // inet_diag_msg: family, state, timer, retrans, then the socket id ... uid, inode.
    let (state, inode) = (payload[1], read_u32(payload, INET_DIAG_MSG_INODE));
    if !is_held(state, inode) {
        return Ok(Peer::Gone);
    }
    Ok(Peer::Uid(read_u32(payload, INET_DIAG_MSG_UID)))
}

/// Elsewhere a loopback caller cannot be looked up: it is told apart from a remote one by
/// nothing.
#[cfg(not(target_os = "linux"))]
pub fn peer_uid(_ours: SocketAddr, _peer: SocketAddr) -> io::Result<Peer> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Whether `ip` is this host's loopback (127.0.0.0/8, ::1, ::ffff:127.x).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4: Ipv4Addr| v4.is_loopback()),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_peer_of_a_loopback_connection_is_this_process_uid() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let ours = server.local_addr().unwrap();
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(peer_uid(ours, peer).unwrap(), Peer::Uid(me));
        // Same ports, another loopback address: not that socket.
        let other = SocketAddr::new("127.0.0.2".parse().unwrap(), peer.port());
        assert_eq!(peer_uid(ours, other).unwrap(), Peer::Gone);
        drop(client);
    }

    /// The client sends and closes before we accept: what is left at the four-tuple (an
    /// orphan, then a TIME_WAIT minisock) reports uid 0, and must name nobody. Run as root,
    /// the client is uid 65534, so uid 0 would be a lie the test sees.
    #[test]
    fn a_client_that_closed_before_accept_is_nobody() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        for linger_zero in [false, true] {
            let mut cmd = std::process::Command::new("python3");
            cmd.arg("-c").arg(format!(
                "import socket,struct\n\
                 s=socket.create_connection(('127.0.0.1',{}))\n\
                 s.sendall(b'GET / HTTP/1.1\\r\\n\\r\\n')\n\
                 {}s.close()\n",
                addr.port(),
                if linger_zero {
                    "s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\n"
                } else {
                    ""
                }
            ));
            if root {
                use std::os::unix::process::CommandExt;
                cmd.uid(65534).gid(65534);
            }
            let Ok(status) = cmd.status() else {
                return; // no python3 here
            };
            assert!(status.success());
            let (server, peer) = listener.accept().unwrap();
            let who = peer_uid(server.local_addr().unwrap(), peer).unwrap();
            assert_eq!(who, Peer::Gone, "linger 0: {linger_zero}");
        }
    }

    #[test]
    fn a_v4_client_of_a_dual_stack_listener_is_found_too() {
        let Ok(listener) = std::net::TcpListener::bind("[::]:0") else {
            return; // no IPv6 here
        };
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert!(peer.is_ipv6(), "mapped: {peer}");
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            peer_uid(server.local_addr().unwrap(), peer).unwrap(),
            Peer::Uid(me)
        );
    }
}
