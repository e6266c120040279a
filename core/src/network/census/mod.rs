//! TCP socket census: counts of IPv4 + IPv6 TCP sockets by state, distinct local ports, and
//! per-port counts, taken from the kernel's sock_diag netlink interface (one state-filtered dump
//! per family) with a /proc/net/tcp{,6} fallback when netlink is refused. Counting matches
//! `ss -tan` for the same socket population. On Windows the table comes from
//! GetExtendedTcpTable through netstat2 (`netstat.rs`).

#[cfg(target_os = "linux")]
mod netlink;
#[cfg(windows)]
mod netstat;
mod owners;
mod peer;
mod port_set;
#[cfg(target_os = "linux")]
mod proc_tables;
mod state;

use port_set::PortSet;

pub use owners::{holders_by_inode, listener_holders, processes_holding, ProcessInfo, ProcessWalk};
pub use peer::{is_loopback, peer_uid, Peer as LoopbackPeer};
use state::StateCounts;
pub use state::{StateSet, TcpState};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::time::Duration;
#[cfg(any(target_os = "linux", windows))]
use std::time::Instant;

use serde::Serialize;

use super::procfs::ProcError;

/// Where the socket table was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CensusSource {
    /// NETLINK_SOCK_DIAG dump (what `ss` uses).
    Netlink,
    /// /proc/net/tcp and /proc/net/tcp6 (what psutil uses).
    Proc,
    /// GetExtendedTcpTable through netstat2 (Windows).
    Netstat2,
}

impl CensusSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CensusSource::Netlink => "netlink",
            CensusSource::Proc => "proc",
            CensusSource::Netstat2 => "netstat2",
        }
    }
}

/// The socket table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CensusError {
    #[error("sock_diag netlink socket unavailable: {0}")]
    NetlinkUnavailable(#[source] io::Error),
    #[error("sock_diag dump of {family} sockets failed: {source}")]
    Dump {
        family: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("malformed sock_diag reply: {0}")]
    Malformed(String),
    #[error("netlink census failed ({netlink}) and the /proc fallback failed too: {proc}")]
    FallbackFailed {
        netlink: Box<CensusError>,
        proc: ProcError,
    },
    #[error("reading the /proc socket tables failed: {0}")]
    Proc(#[source] ProcError),
    #[error("socket census is unsupported on this platform")]
    Unsupported,
}

/// One socket as seen by the census.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct SocketEntry {
    pub ipv6: bool,
    pub state: u8,
    pub local_port: u16,
    pub remote_port: u16,
    /// The socket's inode (0 when the source does not say): names its owner in /proc/PID/fd.
    pub inode: u64,
    /// The uid that owns the socket.
    pub uid: u32,
}

/// What to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CensusRequest {
    /// Kernel-side state filter.
    pub states: StateSet,
    /// Only sockets whose local or remote port is this one (kernel-side bytecode filter).
    pub port: Option<u16>,
}

impl CensusRequest {
    /// Every TCP socket, every state.
    pub const FULL: CensusRequest = CensusRequest {
        states: StateSet::ALL,
        port: None,
    };

    /// Every socket (every state) with `port` at either end.
    pub fn on_port(port: u16) -> CensusRequest {
        CensusRequest {
            states: StateSet::ALL,
            port: Some(port),
        }
    }
}

/// Counts from one pass over the TCP socket tables.
#[derive(Debug, Clone)]
pub struct SocketCensus {
    pub source: CensusSource,
    pub request: CensusRequest,
    by_state: StateCounts,
    /// Sockets whose *local* port is the requested port, by state (only with `request.port`).
    local_by_state: StateCounts,
    pub ipv4_sockets: u64,
    pub ipv6_sockets: u64,
    local_ports: PortSet,
    /// TIME_WAIT sockets per local port and per remote port (65,536 slots each).
    time_wait_by_local_port: Box<[u32]>,
    time_wait_by_remote_port: Box<[u32]>,
    /// Things worth knowing about how the census was taken (e.g. no IPv6 table).
    pub notes: Vec<String>,
    pub duration: Duration,
    /// Ports whose sockets are also kept per port (see [`take_census_watching`]).
    watched: Option<PortSet>,
    per_port: HashMap<u16, PortSockets>,
}

/// The sockets whose local port is one watched port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSockets {
    by_state: StateCounts,
    /// Listening sockets: (inode, owning uid).
    pub listeners: Vec<(u64, u32)>,
}

impl PortSockets {
    /// Sockets in `state` (SYN_RECV includes request sockets).
    pub fn count(&self, state: TcpState) -> u64 {
        self.by_state.count(state)
    }

    /// Non-zero counts keyed by psutil state name, listeners excluded.
    pub fn connections(&self) -> BTreeMap<&'static str, u64> {
        self.by_state.named(&[TcpState::Listen])
    }
}

impl SocketCensus {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn empty(request: CensusRequest, source: CensusSource) -> Self {
        SocketCensus {
            source,
            request,
            by_state: StateCounts::default(),
            local_by_state: StateCounts::default(),
            ipv4_sockets: 0,
            ipv6_sockets: 0,
            local_ports: PortSet::new(),
            time_wait_by_local_port: vec![0; PORT_SLOTS].into_boxed_slice(),
            time_wait_by_remote_port: vec![0; PORT_SLOTS].into_boxed_slice(),
            notes: Vec::new(),
            duration: Duration::ZERO,
            watched: None,
            per_port: HashMap::new(),
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn record(&mut self, entry: SocketEntry) {
        if !StateCounts::knows(entry.state) {
            return;
        }
        self.by_state.add(entry.state);
        if entry.ipv6 {
            self.ipv6_sockets += 1;
        } else {
            self.ipv4_sockets += 1;
        }
        self.local_ports.insert(entry.local_port);
        if entry.state == TcpState::TimeWait as u8 {
            let local = &mut self.time_wait_by_local_port[usize::from(entry.local_port)];
            *local = local.saturating_add(1);
            let remote = &mut self.time_wait_by_remote_port[usize::from(entry.remote_port)];
            *remote = remote.saturating_add(1);
        }
        if self.request.port == Some(entry.local_port) {
            self.local_by_state.add(entry.state);
        }
        if self
            .watched
            .as_ref()
            .is_some_and(|w| w.contains(entry.local_port))
        {
            let port = self.per_port.entry(entry.local_port).or_default();
            port.by_state.add(entry.state);
            if entry.state == TcpState::Listen as u8 {
                port.listeners.push((entry.inode, entry.uid));
            }
        }
    }

    /// Whether any socket, in any state the census counted (TIME_WAIT included), has `port` as
    /// its local port.
    pub fn has_local_port(&self, port: u16) -> bool {
        self.local_ports.contains(port)
    }

    /// The sockets of one watched port (None when the port was not watched or has none).
    pub fn on_port(&self, port: u16) -> Option<&PortSockets> {
        self.per_port.get(&port)
    }

    /// The watched ports with a listener.
    pub fn watched_listening(&self) -> impl Iterator<Item = u16> + '_ {
        self.per_port
            .iter()
            .filter(|(_, s)| !s.listeners.is_empty())
            .map(|(p, _)| *p)
    }

    /// Sockets in `state` (SYN_RECV includes request sockets).
    pub fn count(&self, state: TcpState) -> u64 {
        self.by_state.count(state)
    }

    /// Sockets in `state` whose local port is the requested port.
    pub fn count_local(&self, state: TcpState) -> u64 {
        self.local_by_state.count(state)
    }

    /// All sockets counted (what `ss -tan` lists, header excluded).
    pub fn total(&self) -> u64 {
        self.by_state.total()
    }

    /// Non-zero counts keyed by psutil state name (`ESTABLISHED`, `TIME_WAIT`, ...).
    pub fn by_status(&self) -> BTreeMap<&'static str, u64> {
        self.by_state.named(&[])
    }

    /// TIME_WAIT sockets with `port` as their local end and as their remote end (a
    /// self-connection, with the port at both ends, counts in both).
    pub fn time_wait_on_port(&self, port: u16) -> PortTimeWait {
        let slot = usize::from(port);
        PortTimeWait {
            local: u64::from(self.time_wait_by_local_port[slot]),
            remote: u64::from(self.time_wait_by_remote_port[slot]),
        }
    }

    /// Distinct local ports in `low..=high` used by any counted socket.
    pub fn distinct_local_ports_in(&self, low: u16, high: u16) -> u64 {
        self.local_ports.count_in(low, high)
    }
}

/// TIME_WAIT sockets involving one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortTimeWait {
    /// The port is the socket's local port (e.g. a server that closed first).
    pub local: u64,
    /// The port is the socket's remote port (e.g. clients that closed first).
    pub remote: u64,
}

impl PortTimeWait {
    pub fn total(self) -> u64 {
        self.local + self.remote
    }
}

const PORT_SLOTS: usize = 1 << 16;

/// Visits every socket matching `request`, from netlink or (when netlink is refused) /proc.
#[cfg(target_os = "linux")]
fn for_each_socket(
    request: &CensusRequest,
    notes: &mut Vec<String>,
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<CensusSource, CensusError> {
    let mut visited = 0u64;
    let netlink_result = netlink::dump_tcp(request, notes, &mut |entry| {
        visited += 1;
        visit(entry);
    });
    match netlink_result {
        Ok(()) => Ok(CensusSource::Netlink),
        // Only fall back when nothing was counted yet, so no socket is counted twice.
        Err(error) if visited == 0 => {
            tracing::warn!(%error, "sock_diag census failed; falling back to /proc/net/tcp");
            notes.push(format!("netlink unavailable ({error}); read /proc instead"));
            proc_tables::scan_tcp(request, visit).map_err(|proc| CensusError::FallbackFailed {
                netlink: Box::new(error),
                proc,
            })?;
            Ok(CensusSource::Proc)
        }
        Err(error) => Err(error),
    }
}

/// Visits every socket matching `request`, from GetExtendedTcpTable (netstat2).
#[cfg(windows)]
fn for_each_socket(
    request: &CensusRequest,
    _notes: &mut Vec<String>,
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<CensusSource, CensusError> {
    netstat::dump_tcp(request, visit)?;
    Ok(CensusSource::Netstat2)
}

/// Takes a census of TCP sockets (IPv4 and IPv6) matching `request`.
#[cfg(any(target_os = "linux", windows))]
pub fn take_census(request: CensusRequest) -> Result<SocketCensus, CensusError> {
    take(request, None)
}

/// [`take_census`] that also keeps, for each port of `watch`, its sockets by state and its
/// listeners: one walk of the table serves the system-wide counts and the per-port view.
#[cfg(any(target_os = "linux", windows))]
pub fn take_census_watching(
    request: CensusRequest,
    watch: &[u16],
) -> Result<SocketCensus, CensusError> {
    let mut set = PortSet::new();
    for p in watch {
        set.insert(*p);
    }
    take(request, Some(set))
}

#[cfg(any(target_os = "linux", windows))]
fn take(request: CensusRequest, watched: Option<PortSet>) -> Result<SocketCensus, CensusError> {
    let started = Instant::now();
    let mut census = SocketCensus::empty(request, CensusSource::Netlink);
    census.watched = watched;
    let mut notes = Vec::new();
    census.source = for_each_socket(&request, &mut notes, &mut |entry| census.record(entry))?;
    census.notes = notes;
    census.duration = started.elapsed();
    Ok(census)
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn take_census_watching(
    _request: CensusRequest,
    _watch: &[u16],
) -> Result<SocketCensus, CensusError> {
    Err(CensusError::Unsupported)
}

/// Takes a census from one source only, without fallback (for comparisons and benchmarks).
#[cfg(target_os = "linux")]
pub fn take_census_from(
    source: CensusSource,
    request: CensusRequest,
) -> Result<SocketCensus, CensusError> {
    let started = Instant::now();
    let mut census = SocketCensus::empty(request, source);
    let mut notes = Vec::new();
    match source {
        CensusSource::Netlink => {
            netlink::dump_tcp(&request, &mut notes, &mut |entry| census.record(entry))?
        }
        CensusSource::Proc => proc_tables::scan_tcp(&request, &mut |entry| census.record(entry))
            .map_err(CensusError::Proc)?,
        CensusSource::Netstat2 => return Err(CensusError::Unsupported),
    }
    census.notes = notes;
    census.duration = started.elapsed();
    Ok(census)
}

#[cfg(not(target_os = "linux"))]
pub fn take_census_from(
    _source: CensusSource,
    _request: CensusRequest,
) -> Result<SocketCensus, CensusError> {
    Err(CensusError::Unsupported)
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn take_census(_request: CensusRequest) -> Result<SocketCensus, CensusError> {
    Err(CensusError::Unsupported)
}

/// Inodes of the TCP LISTEN sockets bound to `port` (IPv4 and IPv6), from a filtered dump.
#[cfg(target_os = "linux")]
pub(crate) fn listener_inodes(port: u16) -> Result<HashSet<u64>, CensusError> {
    let request = CensusRequest {
        states: StateSet::LISTEN,
        port: Some(port),
    };
    let mut inodes = HashSet::new();
    let mut notes = Vec::new();
    for_each_socket(&request, &mut notes, &mut |entry| {
        if entry.state == TcpState::Listen as u8 && entry.local_port == port && entry.inode != 0 {
            inodes.insert(entry.inode);
        }
    })?;
    Ok(inodes)
}

/// The listening sockets (inode, owning uid) on each of `ports`, from one LISTEN-only dump.
#[cfg(target_os = "linux")]
pub fn listeners_on(ports: &HashSet<u16>) -> Result<HashMap<u16, Vec<(u64, u32)>>, CensusError> {
    let request = CensusRequest {
        states: StateSet::LISTEN,
        port: None,
    };
    let mut found: HashMap<u16, Vec<(u64, u32)>> = HashMap::new();
    let mut notes = Vec::new();
    for_each_socket(&request, &mut notes, &mut |entry| {
        if entry.state == TcpState::Listen as u8 && ports.contains(&entry.local_port) {
            found
                .entry(entry.local_port)
                .or_default()
                .push((entry.inode, entry.uid));
        }
    })?;
    Ok(found)
}

#[cfg(not(target_os = "linux"))]
pub fn listeners_on(_ports: &HashSet<u16>) -> Result<HashMap<u16, Vec<(u64, u32)>>, CensusError> {
    Err(CensusError::Unsupported)
}

/// Local ports of TCP LISTEN sockets, IPv4 and IPv6, from a LISTEN-only dump.
#[cfg(any(target_os = "linux", windows))]
pub fn listening_ports() -> Result<HashSet<u16>, CensusError> {
    let request = CensusRequest {
        states: StateSet::LISTEN,
        port: None,
    };
    let mut ports = HashSet::new();
    let mut notes = Vec::new();
    for_each_socket(&request, &mut notes, &mut |entry| {
        if entry.state == TcpState::Listen as u8 {
            ports.insert(entry.local_port);
        }
    })?;
    Ok(ports)
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn listening_ports() -> Result<HashSet<u16>, CensusError> {
    Err(CensusError::Unsupported)
}

/// Whether `entry` passes the request's filters (used by the /proc fallback, where the kernel
/// does not filter for us).
#[cfg(any(target_os = "linux", windows))]
fn matches(request: &CensusRequest, entry: &SocketEntry) -> bool {
    let state_ok = TcpState::from_kernel(entry.state).is_some_and(|state| {
        request.states.contains(state)
            || (state == TcpState::NewSynRecv && request.states.contains(TcpState::SynRecv))
    });
    let port_ok = request
        .port
        .is_none_or(|port| entry.local_port == port || entry.remote_port == port);
    state_ok && port_ok
}
