//! What the allocator asks of the host it runs on, in one seam: the time, whether a port can
//! be bound now, and whether an owning process still runs. The daemon uses [`RealHost`]; a test
//! drives the allocator through a host of its own (`tests/allocator_model.rs` fakes all three,
//! so a model can decide which processes die and which ports are taken).
//!
//! Behind a network gate the pre-allocation checks probe for themselves (they are the network
//! layer's); without one, the allocator's free check is this probe alone.

use std::sync::Arc;

use super::clock::{Clock, Now, SystemClock};
use super::process::{Liveness, ProcessIdentity};
use crate::network::{firewall, PortFinding};

pub trait Host: Send + Sync {
    /// Now, on the wall clock and the boot clock.
    fn now(&self) -> Now;
    /// The probe bind of `port` (TCP on IPv4 and IPv6).
    fn probe(&self, port: u16) -> PortFinding;
    /// Whether `owner` still runs: the same pid, start time and boot.
    fn liveness(&self, owner: &ProcessIdentity) -> Liveness;
}

/// The host the daemon runs on, read on `clock` (the system's; a test's that moves time).
pub struct RealHost {
    clock: Arc<dyn Clock>,
}

impl RealHost {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl Default for RealHost {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl Host for RealHost {
    fn now(&self) -> Now {
        self.clock.now()
    }

    fn probe(&self, port: u16) -> PortFinding {
        firewall::probe(port).finding()
    }

    fn liveness(&self, owner: &ProcessIdentity) -> Liveness {
        owner.liveness()
    }
}
