//! Which connections may open: the daemon-wide and per-peer counts, and each connection's
//! place in them, given back when it closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::activity::PeerKey;
use super::Limits;

/// Connections open now, in total and per peer, shared by both listeners.
#[derive(Debug, Default)]
pub struct Census {
    total: AtomicUsize,
    per_peer: Mutex<HashMap<PeerKey, usize>>,
    /// When each kind of refusal was last logged (one line a second at most).
    last_log: Mutex<HashMap<&'static str, Instant>>,
}

impl Census {
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    pub(super) fn admit(
        self: &Arc<Self>,
        key: PeerKey,
        limits: &Limits,
    ) -> Result<Slot, &'static str> {
        let mut per = self.per_peer.lock().unwrap_or_else(|p| p.into_inner());
        if self.total.load(Ordering::Acquire) >= limits.max_connections {
            return Err("the daemon's connection limit (max_connections) is reached");
        }
        let mine = per.entry(key).or_default();
        if *mine >= limits.max_connections_per_peer {
            return Err("this caller's connection limit (max_connections_per_peer) is reached");
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(Slot {
            census: self.clone(),
            key,
        })
    }

    /// Logs `what` unless the same was logged less than a second ago.
    pub(super) fn log_once_a_second(&self, what: &'static str, detail: impl FnOnce() -> String) {
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last
            .get(what)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1))
        {
            return;
        }
        last.insert(what, now);
        tracing::warn!("{what}: {}", detail());
    }
}

/// A connection's place in the [`Census`], given back when the connection closes.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) census: Arc<Census>,
    key: PeerKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per = self
            .census
            .per_peer
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.key);
            }
        }
        self.census.total.fetch_sub(1, Ordering::AcqRel);
    }
}
