//! Running totals of what the allocator did since start-up, for status reports and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use super::lease::ReclaimReason;

#[derive(Debug, Default)]
pub struct Counters {
    allocated: AtomicU64,
    released: AtomicU64,
    reclaimed: [AtomicU64; 4],
}

/// The totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub allocated: u64,
    pub released: u64,
    /// By reason, in the order of [`ReclaimReason::ALL`].
    pub reclaimed: [u64; 4],
}

impl Totals {
    pub fn reclaimed_total(&self) -> u64 {
        self.reclaimed.iter().sum()
    }
}

fn slot(r: ReclaimReason) -> usize {
    ReclaimReason::ALL
        .iter()
        .position(|x| *x == r)
        .unwrap_or_default()
}

impl Counters {
    pub fn allocated(&self) {
        self.allocated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn released(&self) {
        self.released.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reclaimed(&self, reason: ReclaimReason) {
        self.reclaimed[slot(reason)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self) -> Totals {
        Totals {
            allocated: self.allocated.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
            reclaimed: std::array::from_fn(|i| self.reclaimed[i].load(Ordering::Relaxed)),
        }
    }
}
