//! The TCP socket table on Windows, through netstat2 (GetExtendedTcpTable for IPv4 and IPv6,
//! with each socket's owning PID). Windows filters nothing for us: every row is read and the
//! request's state and port filters are applied here. Sockets have no inodes on Windows; the
//! owning PID names the process instead ([`listener_pids`]).

use std::collections::BTreeSet;

use netstat2::{
    iterate_sockets_info, AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo,
    TcpState as NetstatState,
};

use super::{matches, CensusError, CensusRequest, SocketEntry, TcpState};

/// Windows' MIB_TCP_STATE, mapped onto the kernel numbering the census counts in. DELETE_TCB
/// (a connection being torn down) counts as CLOSE, as `netstat` shows nothing better for it.
fn state_of(state: NetstatState) -> Option<TcpState> {
    Some(match state {
        NetstatState::Established => TcpState::Established,
        NetstatState::SynSent => TcpState::SynSent,
        NetstatState::SynReceived => TcpState::SynRecv,
        NetstatState::FinWait1 => TcpState::FinWait1,
        NetstatState::FinWait2 => TcpState::FinWait2,
        NetstatState::TimeWait => TcpState::TimeWait,
        NetstatState::Closed | NetstatState::DeleteTcb => TcpState::Close,
        NetstatState::CloseWait => TcpState::CloseWait,
        NetstatState::LastAck => TcpState::LastAck,
        NetstatState::Listen => TcpState::Listen,
        NetstatState::Closing => TcpState::Closing,
        NetstatState::Unknown => return None,
    })
}

/// Visits every TCP socket (both families) that matches `request`, with its owning PID.
fn each_socket(
    request: &CensusRequest,
    visit: &mut dyn FnMut(SocketEntry, u32),
) -> Result<(), CensusError> {
    let rows = iterate_sockets_info(
        AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6,
        ProtocolFlags::TCP,
    )
    .map_err(|e| CensusError::Dump {
        family: "TCP",
        source: std::io::Error::other(e.to_string()),
    })?;
    for row in rows {
        let row = row.map_err(|e| CensusError::Malformed(e.to_string()))?;
        let ProtocolSocketInfo::Tcp(tcp) = &row.protocol_socket_info else {
            continue;
        };
        let Some(state) = state_of(tcp.state) else {
            continue;
        };
        let entry = SocketEntry {
            ipv6: tcp.local_addr.is_ipv6(),
            state: state as u8,
            local_port: tcp.local_port,
            remote_port: tcp.remote_port,
            inode: 0,
            uid: 0,
        };
        if matches(request, &entry) {
            visit(entry, row.associated_pids.first().copied().unwrap_or(0));
        }
    }
    Ok(())
}

/// Visits every TCP socket that matches `request`.
pub(super) fn dump_tcp(
    request: &CensusRequest,
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<(), CensusError> {
    each_socket(request, &mut |entry, _| visit(entry))
}

/// The PIDs owning a TCP socket listening on `port` (PID 0 — the idle process, or a table
/// that does not say — left out).
pub(super) fn listener_pids(port: u16) -> Result<BTreeSet<u32>, CensusError> {
    let request = CensusRequest {
        states: super::StateSet::LISTEN,
        port: Some(port),
    };
    let mut pids = BTreeSet::new();
    each_socket(&request, &mut |entry, pid| {
        if entry.local_port == port && pid != 0 {
            pids.insert(pid);
        }
    })?;
    Ok(pids)
}
