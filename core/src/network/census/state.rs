//! TCP states as the kernel numbers them, their names in psutil and in `ss`, and state sets
//! used as the kernel-side filter of a dump.

use std::collections::BTreeMap;

use serde::Serialize;

/// Kernel TCP states (values of `include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    /// Request sockets; the kernel reports them as SYN_RECV.
    NewSynRecv = 12,
}

/// Number of slots in per-state count arrays (index = kernel state value).
const STATE_SLOTS: usize = 13;

/// Sockets counted by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts([u64; STATE_SLOTS]);

impl StateCounts {
    /// Whether `raw` is a state the kernel reports (a slot exists for it).
    pub(crate) fn knows(raw: u8) -> bool {
        usize::from(raw) < STATE_SLOTS
    }

    /// Counts a socket in the kernel's state `raw` (an unknown value is ignored).
    pub(crate) fn add(&mut self, raw: u8) {
        if let Some(n) = self.0.get_mut(usize::from(raw)) {
            *n += 1;
        }
    }

    /// Sockets in `state` (SYN_RECV includes request sockets).
    pub fn count(&self, state: TcpState) -> u64 {
        match state {
            TcpState::SynRecv | TcpState::NewSynRecv => {
                self.0[TcpState::SynRecv as usize] + self.0[TcpState::NewSynRecv as usize]
            }
            other => self.0[other as usize],
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Non-zero counts keyed by psutil state name, without the states in `except`.
    pub fn named(&self, except: &[TcpState]) -> BTreeMap<&'static str, u64> {
        let mut map = BTreeMap::new();
        for state in TcpState::ALL {
            let count = self.0[state as usize];
            if count > 0 && !except.contains(&state) {
                *map.entry(state.psutil_name()).or_insert(0) += count;
            }
        }
        map
    }
}

impl TcpState {
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
    ];

    pub fn from_kernel(value: u8) -> Option<TcpState> {
        TcpState::ALL
            .get(usize::from(value).checked_sub(1)?)
            .copied()
    }

    /// psutil's name (`ESTABLISHED`, `TIME_WAIT`, ...), used in the seed's `by_status`.
    pub fn psutil_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv | TcpState::NewSynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// The name `ss` prints in its State column (`ESTAB`, `TIME-WAIT`, ...).
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv | TcpState::NewSynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of TCP states, used as the kernel-side filter of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSet(u32);

impl StateSet {
    /// Every state `ss -a` asks for (request sockets included).
    pub const ALL: StateSet = StateSet(0x1ffe);
    pub const LISTEN: StateSet = StateSet(1 << TcpState::Listen as u32);
    pub const TIME_WAIT: StateSet = StateSet(1 << TcpState::TimeWait as u32);

    pub fn of(states: &[TcpState]) -> StateSet {
        StateSet(states.iter().fold(0, |bits, state| bits | state.bit()))
    }

    pub fn contains(self, state: TcpState) -> bool {
        self.0 & state.bit() != 0
    }

    /// The kernel's `idiag_states` bitmask.
    pub fn bits(self) -> u32 {
        self.0
    }
}
