//! Whether the state can be written. A full disk (or a failing one) makes every change fail
//! while reads still work; the daemon must say so — health NOT_SERVING for the ports service,
//! a critical `state_storage` check — and notice by itself when writing works again.

use std::sync::Mutex;

use super::allocator::Allocator;
use super::store::StoreError;

/// The last failed write, while writes fail.
#[derive(Debug, Default)]
pub(super) struct StorageHealth {
    failing: Mutex<Option<String>>,
}

impl StorageHealth {
    /// Records the outcome of a write; true when writes started or stopped failing.
    pub fn note<T>(&self, r: &Result<T, StoreError>) -> bool {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match (r, failing.is_some()) {
            (Err(e), was) => {
                if !was {
                    tracing::error!(error = %e, "writes to the state database fail: no change can be recorded until they work again");
                }
                *failing = Some(e.to_string());
                !was
            }
            (Ok(_), true) => {
                tracing::info!("writes to the state database work again");
                *failing = None;
                true
            }
            (Ok(_), false) => false,
        }
    }

    pub fn problem(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Allocator {
    /// Why the state cannot be written now, if it cannot (the last write failed).
    pub fn storage_problem(&self) -> Option<String> {
        self.storage.problem()
    }

    /// While writes fail, tries a tiny one, so recovery is noticed without waiting for a
    /// client's change (the watchdog's reaper calls this every second).
    pub fn probe_storage(&self) {
        if self.storage.problem().is_none() {
            return;
        }
        let r = self.lock().store.touch();
        if self.storage.note(&r) {
            self.storage_changed();
        }
    }

    /// The network snapshot carries the state_storage check: one taken before the change is
    /// out of date, so the next allocation takes a new one.
    pub(super) fn storage_changed(&self) {
        if let Some(g) = &self.gate {
            g.invalidate();
        }
    }
}
