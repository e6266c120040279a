//! A minimal NETLINK_SOCK_DIAG client: one `inet_diag_req_v2` dump per address family with a
//! kernel-side state bitmask and an optional port filter (inet_diag bytecode), parsing only the
//! fields the census needs from each `inet_diag_msg` (family, state, ports).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{CensusError, CensusRequest, SocketEntry};

pub(super) const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// Legacy request type: one dump covering IPv4 and IPv6 (the kernel sets AF_UNSPEC), so the
/// shared TCP hash tables are walked once instead of once per family.
const TCPDIAG_GETSOCK: u16 = 18;
pub(super) const NLMSG_HDRLEN: usize = 16;
pub(super) const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `struct inet_diag_req` (the legacy request): family, lengths, ext, sockid, states, dbs.
const INET_DIAG_REQ_LEN: usize = 60;
/// `inet_diag_msg` up to and including the ports of `inet_diag_sockid`.
const INET_DIAG_MSG_MIN: usize = 8;
/// Offset of `idiag_uid` in struct inet_diag_msg.
pub(super) const INET_DIAG_MSG_UID: usize = 64;
/// Offset of `idiag_inode` in struct inet_diag_msg.
pub(super) const INET_DIAG_MSG_INODE: usize = 68;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
const INET_DIAG_BC_D_GE: u8 = 4;
const INET_DIAG_BC_D_LE: u8 = 5;
/// The kernel fills at most ~32 KiB per dump message batch; leave room.
const RECV_BUFFER: usize = 64 * 1024;

/// Which kind of dump to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DumpScope {
    /// Legacy TCPDIAG_GETSOCK: both families in one walk.
    AllFamilies,
    /// SOCK_DIAG_BY_FAMILY for one family.
    Family(u8),
}

/// Dumps IPv4 and IPv6 TCP sockets matching `request`, calling `visit` for each: one
/// both-families dump when the kernel offers it, else one dump per family.
pub(super) fn dump_tcp(
    request: &CensusRequest,
    notes: &mut Vec<String>,
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<(), CensusError> {
    let socket = open_sock_diag().map_err(CensusError::NetlinkUnavailable)?;
    let mut buffer = vec![0u8; RECV_BUFFER];
    let mut visited = 0u64;
    let combined = dump(
        &socket,
        DumpScope::AllFamilies,
        request,
        1,
        &mut buffer,
        &mut |entry| {
            visited += 1;
            visit(entry);
        },
    );
    match combined {
        Ok(()) => return Ok(()),
        Err(CensusError::Dump { source, .. }) if visited == 0 => {
            tracing::debug!(%source, "legacy inet_diag dump refused; dumping per family");
        }
        Err(error) => return Err(error),
    }
    dump(
        &socket,
        DumpScope::Family(libc::AF_INET as u8),
        request,
        2,
        &mut buffer,
        visit,
    )?;
    match dump(
        &socket,
        DumpScope::Family(libc::AF_INET6 as u8),
        request,
        3,
        &mut buffer,
        visit,
    ) {
        Ok(()) => Ok(()),
        // No IPv6 in this kernel (module absent or disabled): there are no IPv6 sockets.
        Err(CensusError::Dump { source, .. })
            if matches!(
                source.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::EAFNOSUPPORT) | Some(libc::EINVAL)
            ) =>
        {
            notes.push(format!("no IPv6 socket table: {source}"));
            Ok(())
        }
        Err(error) => Err(error),
    }
}

pub(super) fn open_sock_diag() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the returned descriptor is owned by the OwnedFd below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created, valid descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // A dump must never hang the report: bound each recv.
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: valid fd, pointer and length of a timeval.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

fn scope_name(scope: DumpScope) -> &'static str {
    match scope {
        DumpScope::AllFamilies => "TCP",
        DumpScope::Family(family) if i32::from(family) == libc::AF_INET6 => "IPv6 TCP",
        DumpScope::Family(_) => "IPv4 TCP",
    }
}

/// Builds the netlink request: nlmsghdr + inet_diag_req(_v2) (+ bytecode attribute).
fn build_request(scope: DumpScope, request: &CensusRequest, sequence: u32) -> Vec<u8> {
    let bytecode = request.port.map(port_bytecode);
    let attribute_len = bytecode.as_ref().map_or(0, |code| 4 + code.len());
    let (kind, body_len) = match scope {
        DumpScope::AllFamilies => (TCPDIAG_GETSOCK, INET_DIAG_REQ_LEN),
        DumpScope::Family(_) => (SOCK_DIAG_BY_FAMILY, INET_DIAG_REQ_V2_LEN),
    };
    let total = NLMSG_HDRLEN + body_len + attribute_len;
    let mut message = Vec::with_capacity(total);
    // struct nlmsghdr
    message.extend_from_slice(&(total as u32).to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&sequence.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    match scope {
        DumpScope::AllFamilies => {
            // struct inet_diag_req: family (ignored), src_len, dst_len, ext (none), an all-zero
            // inet_diag_sockid (48 bytes), states, dbs.
            message.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
            message.resize(NLMSG_HDRLEN + 4 + 48, 0);
            message.extend_from_slice(&request.states.bits().to_ne_bytes());
            message.extend_from_slice(&0u32.to_ne_bytes());
        }
        DumpScope::Family(family) => {
            // struct inet_diag_req_v2: family, protocol, ext (none: keep replies small), pad,
            // states, then an all-zero inet_diag_sockid.
            message.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
            message.extend_from_slice(&request.states.bits().to_ne_bytes());
            message.resize(NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN, 0);
        }
    }
    if let Some(code) = bytecode {
        message.extend_from_slice(&((4 + code.len()) as u16).to_ne_bytes());
        message.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        message.extend_from_slice(&code);
    }
    message
}

/// inet_diag bytecode for `sport == port || dport == port`, laid out as `ss` does for an OR:
/// the first pair's rejections land on the second pair; a JMP between them accepts.
fn port_bytecode(port: u16) -> Vec<u8> {
    // struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }; a port comparison is followed by an
    // op whose `no` holds the port. Offsets are relative to the op; jumping exactly to the end
    // accepts, jumping 4 past the end rejects.
    let op = |code: u8, yes: u8, no: u16| -> [u8; 4] {
        let no = no.to_ne_bytes();
        [code, yes, no[0], no[1]]
    };
    let value = op(0, 0, port);
    let mut code = Vec::with_capacity(36);
    // Source pair (16 bytes); a rejection skips to the destination pair at offset 20.
    code.extend_from_slice(&op(INET_DIAG_BC_S_GE, 8, 20));
    code.extend_from_slice(&value);
    code.extend_from_slice(&op(INET_DIAG_BC_S_LE, 8, 12));
    code.extend_from_slice(&value);
    // Source matched: jump over the destination pair to the end (accept).
    code.extend_from_slice(&op(INET_DIAG_BC_JMP, 4, 20));
    // Destination pair (16 bytes); a rejection jumps 4 past the end.
    code.extend_from_slice(&op(INET_DIAG_BC_D_GE, 8, 20));
    code.extend_from_slice(&value);
    code.extend_from_slice(&op(INET_DIAG_BC_D_LE, 8, 12));
    code.extend_from_slice(&value);
    code
}

fn dump(
    socket: &OwnedFd,
    scope: DumpScope,
    request: &CensusRequest,
    sequence: u32,
    buffer: &mut [u8],
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<(), CensusError> {
    let dump_error = |source: io::Error| CensusError::Dump {
        family: scope_name(scope),
        source,
    };
    send_request(socket, &build_request(scope, request, sequence)).map_err(dump_error)?;
    loop {
        let received = receive(socket, buffer).map_err(dump_error)?;
        if received == 0 {
            return Err(CensusError::Malformed(
                "netlink socket closed mid-dump".into(),
            ));
        }
        match parse_batch(&buffer[..received], visit)? {
            Batch::More => continue,
            Batch::Done => return Ok(()),
            Batch::Failed(errno) => return Err(dump_error(io::Error::from_raw_os_error(errno))),
        }
    }
}

pub(super) fn send_request(socket: &OwnedFd, message: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    loop {
        // SAFETY: valid fd; message and address pointers/lengths describe live memory.
        let sent = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

pub(super) fn receive(socket: &OwnedFd, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: valid fd; the buffer pointer/length describe writable memory we own.
        let received = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if received >= 0 {
            return Ok(received as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

enum Batch {
    More,
    Done,
    Failed(i32),
}

pub(super) fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

pub(super) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Parses one datagram of netlink messages.
fn parse_batch(data: &[u8], visit: &mut dyn FnMut(SocketEntry)) -> Result<Batch, CensusError> {
    let mut offset = 0;
    while offset + NLMSG_HDRLEN <= data.len() {
        let length = read_u32(data, offset) as usize;
        let kind = read_u16(data, offset + 4);
        if length < NLMSG_HDRLEN || offset + length > data.len() {
            return Err(CensusError::Malformed(format!(
                "message length {length} at offset {offset} of {}",
                data.len()
            )));
        }
        let payload = &data[offset + NLMSG_HDRLEN..offset + length];
        match i32::from(kind) {
            libc::NLMSG_DONE => {
                // A dump may end with an error code in the DONE payload.
                if payload.len() >= 4 {
                    let code = read_u32(payload, 0) as i32;
                    if code < 0 {
                        return Ok(Batch::Failed(-code));
                    }
                }
                return Ok(Batch::Done);
            }
            libc::NLMSG_ERROR => {
                let code = if payload.len() >= 4 {
                    read_u32(payload, 0) as i32
                } else {
                    -libc::EIO
                };
                if code != 0 {
                    return Ok(Batch::Failed(-code));
                }
            }
            _ if (kind == SOCK_DIAG_BY_FAMILY || kind == TCPDIAG_GETSOCK)
                && payload.len() >= INET_DIAG_MSG_MIN =>
            {
                visit(SocketEntry {
                    ipv6: i32::from(payload[0]) == libc::AF_INET6,
                    state: payload[1],
                    local_port: u16::from_be_bytes([payload[4], payload[5]]),
                    remote_port: u16::from_be_bytes([payload[6], payload[7]]),
                    // inet_diag_msg: 4 bytes, sockid (48), expires, rqueue, wqueue, uid, inode.
                    inode: if payload.len() >= INET_DIAG_MSG_INODE + 4 {
                        u64::from(read_u32(payload, INET_DIAG_MSG_INODE))
                    } else {
                        0
                    },
                    uid: if payload.len() >= INET_DIAG_MSG_UID + 4 {
                        read_u32(payload, INET_DIAG_MSG_UID)
                    } else {
                        0
                    },
                });
            }
            _ => {}
        }
        offset += (length + 3) & !3;
    }
    Ok(Batch::More)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::census::TcpState;
    use std::net::{TcpListener, TcpStream};

    fn count(scopes: &[DumpScope], request: &CensusRequest) -> [u64; 13] {
        let socket = open_sock_diag().expect("sock_diag socket");
        let mut buffer = vec![0u8; RECV_BUFFER];
        let mut counts = [0u64; 13];
        for (sequence, scope) in scopes.iter().enumerate() {
            dump(
                &socket,
                *scope,
                request,
                sequence as u32 + 1,
                &mut buffer,
                &mut |entry| {
                    counts[usize::from(entry.state).min(12)] += 1;
                },
            )
            .expect("dump");
        }
        counts
    }

    #[test]
    fn the_combined_dump_and_per_family_dumps_see_the_same_sockets() {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let port = v4.local_addr().expect("addr").port();
        let v6 = TcpListener::bind(("::1", port)).expect("bind v6 on the same port");
        let mut streams = Vec::new();
        for listener in [&v4, &v6] {
            for _ in 0..3 {
                streams.push(
                    TcpStream::connect(listener.local_addr().expect("addr")).expect("connect"),
                );
                streams.push(listener.accept().expect("accept").0);
            }
        }
        let request = CensusRequest::on_port(port);
        let combined = count(&[DumpScope::AllFamilies], &request);
        let per_family = count(
            &[
                DumpScope::Family(libc::AF_INET as u8),
                DumpScope::Family(libc::AF_INET6 as u8),
            ],
            &request,
        );
        assert_eq!(combined, per_family);
        assert_eq!(combined[TcpState::Established as usize], 12);
        assert_eq!(combined[TcpState::Listen as usize], 2);
    }

    #[test]
    fn the_port_bytecode_has_the_kernel_layout() {
        let code = port_bytecode(0x1f90);
        assert_eq!(code.len(), 36);
        assert_eq!(code[0], INET_DIAG_BC_S_GE);
        assert_eq!(code[16], INET_DIAG_BC_JMP);
        assert_eq!(u16::from_ne_bytes([code[6], code[7]]), 0x1f90);
    }
}
