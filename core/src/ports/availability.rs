//! Which unleased ports cannot be handed out right now, known without probing them: the ports
//! with a TCP listener (from the watchdog's latest pass, or a LISTEN-only dump of the socket
//! table when that is older than [`MAX_AGE`]) and the ports whose last probe the host refused (EACCES/EPERM, or no
//! family could bind). Status reads this instead of probing every free port on every call, so
//! it costs a walk over the range, not a hundred bind() calls.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::range::{ephemeral_warnings, RangeSet};
use crate::network::PortFinding;

/// An observation older than this is retaken by the next Status (one LISTEN-only dump: the
/// kernel filters, so it stays cheap on a host with many connections).
pub const MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub(super) struct Availability {
    /// Managed ports with a listener at the last observation (or a later probe).
    listening: HashSet<u16>,
    observed_at: Option<Instant>,
    /// Ports whose last probe was refused for a reason other than a listener.
    refused: HashSet<u16>,
    /// The ranges' overlap with the kernel's ephemeral range, read with the listeners (a
    /// sysctl read per range, not per Status).
    ephemeral_warnings: Vec<String>,
}

impl Availability {
    /// Takes the listeners of a socket-table dump (only the managed ports are kept).
    pub fn observe(&mut self, listening: &HashSet<u16>, ranges: &RangeSet) {
        self.listening.clear();
        self.listening
            .extend(listening.iter().copied().filter(|p| ranges.contains(*p)));
        self.observed_at = Some(Instant::now());
        self.ephemeral_warnings = ephemeral_warnings(ranges);
    }

    /// The ranges' overlap with the ephemeral range as of the last observation (read now when
    /// there was none).
    pub fn ephemeral_warnings(&self, ranges: &RangeSet) -> Vec<String> {
        match self.observed_at {
            Some(_) => self.ephemeral_warnings.clone(),
            None => ephemeral_warnings(ranges),
        }
    }

    /// Whether the listeners were observed recently enough to answer Status.
    pub fn is_recent(&self) -> bool {
        self.observed_at.is_some_and(|at| at.elapsed() <= MAX_AGE)
    }

    /// What a probe of `port` just found: newer than the last dump.
    pub fn note_probe(&mut self, port: u16, finding: &PortFinding) {
        match finding {
            PortFinding::Bindable => {
                self.listening.remove(&port);
                self.refused.remove(&port);
            }
            PortFinding::InUse(_) => {
                self.listening.insert(port);
                self.refused.remove(&port);
            }
            PortFinding::Blocked(_) | PortFinding::Unusable(_) => {
                self.refused.insert(port);
            }
            // Nothing was learnt about the port.
            PortFinding::Unknown(_) => {}
        }
    }

    /// Whether an unleased, rested port cannot be handed out now.
    pub fn is_unavailable(&self, port: u16) -> bool {
        self.listening.contains(&port) || self.refused.contains(&port)
    }
}
