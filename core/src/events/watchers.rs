//! Who may hold how many event streams (gRPC Watch and the REST event stream alike): at most
//! `max_watchers` in all, at most `max_watchers_per_uid` for each uid, and the last
//! `reserved_watchers` only for root and the daemon's own uid, so one local user opening
//! thousands of streams leaves the administrator able to watch. Callers the daemon cannot
//! identify (remote ones) count as one uid together, as for the port quotas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The limits (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatcherLimits {
    pub max: usize,
    pub per_uid: usize,
    pub reserved: usize,
}

impl Default for WatcherLimits {
    fn default() -> Self {
        Self {
            max: 4096,
            per_uid: 256,
            reserved: 256,
        }
    }
}

impl WatcherLimits {
    /// Whether the three fit together: the reserve leaves room for others, and a uid's share
    /// fits in what others may take.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max == 0 {
            return Err(("max_watchers", "must be at least 1".into()));
        }
        if self.per_uid == 0 {
            return Err(("max_watchers_per_uid", "must be at least 1".into()));
        }
        if self.reserved >= self.max {
            return Err((
                "reserved_watchers",
                format!(
                    "{} leaves no event stream for other users: keep it below max_watchers ({})",
                    self.reserved, self.max
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("too many event streams: {open} are open, the daemon's limit (max_watchers); close one and retry")]
    Full { open: usize },
    #[error("too many event streams for {holder}: it has {held} open, the most one user may (max_watchers_per_uid); close one and retry")]
    PerUid { holder: String, held: usize },
    #[error("too many event streams: the last {reserved} of {max} are kept for root and the daemon's own user (reserved_watchers); close one and retry")]
    Reserved { reserved: usize, max: usize },
    #[error("the daemon is shutting down")]
    Closing,
}

impl SubscribeError {
    /// The config key whose limit was reached (None when the daemon is closing).
    pub fn limit_key(&self) -> Option<&'static str> {
        match self {
            Self::Full { .. } => Some("max_watchers"),
            Self::PerUid { .. } => Some("max_watchers_per_uid"),
            Self::Reserved { .. } => Some("reserved_watchers"),
            Self::Closing => None,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Keyed by uid; None is every caller that could not be identified.
    per_uid: HashMap<Option<u32>, usize>,
}

/// The open event streams, counted by holder.
#[derive(Debug)]
pub struct Watchers {
    limits: WatcherLimits,
    /// The daemon's own uid: it shares root's standing (its operator runs it).
    own_uid: u32,
    counts: Mutex<Counts>,
    /// Refusals are logged one line a second at most.
    refusal_log: crate::throttle::OncePerSecond,
}

impl Watchers {
    pub fn new(limits: WatcherLimits, own_uid: u32) -> Self {
        Self {
            limits,
            own_uid,
            counts: Mutex::default(),
            refusal_log: crate::throttle::OncePerSecond::new(),
        }
    }

    /// Event streams open now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// A place for one more stream of `uid`, or why not (logged, at most once a second).
    pub fn admit(self: &Arc<Self>, uid: Option<u32>) -> Result<WatcherSlot, SubscribeError> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let held = c.per_uid.get(&uid).copied().unwrap_or(0);
        if let Some(refused) = self.refusal(uid, c.total, held) {
            drop(c);
            self.log_refusal(&refused);
            return Err(refused);
        }
        c.total += 1;
        *c.per_uid.entry(uid).or_default() += 1;
        Ok(WatcherSlot {
            watchers: self.clone(),
            uid,
        })
    }

    /// The rule: root and the daemon's own uid up to the limit; everyone else within its share
    /// and outside the reserve.
    fn refusal(&self, uid: Option<u32>, total: usize, held: usize) -> Option<SubscribeError> {
        let l = &self.limits;
        if total >= l.max {
            return Some(SubscribeError::Full { open: total });
        }
        if crate::ports::is_operator(uid, self.own_uid) {
            return None;
        }
        if held >= l.per_uid {
            let holder = uid.map_or_else(
                || "callers the daemon cannot identify".to_string(),
                |u| format!("uid {u}"),
            );
            return Some(SubscribeError::PerUid { holder, held });
        }
        (total >= l.max - l.reserved).then_some(SubscribeError::Reserved {
            reserved: l.reserved,
            max: l.max,
        })
    }

    fn log_refusal(&self, refused: &SubscribeError) {
        if !self.refusal_log.ready() {
            return;
        }
        tracing::warn!(open = self.open(), "event stream refused: {refused}");
    }
}

/// One stream's place, given back when it ends.
#[derive(Debug)]
pub struct WatcherSlot {
    watchers: Arc<Watchers>,
    uid: Option<u32>,
}

impl Drop for WatcherSlot {
    fn drop(&mut self) {
        let mut c = self
            .watchers
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                c.per_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchers(max: usize, per_uid: usize, reserved: usize) -> Arc<Watchers> {
        Arc::new(Watchers::new(
            WatcherLimits {
                max,
                per_uid,
                reserved,
            },
            999,
        ))
    }

    #[test]
    fn one_uid_gets_its_share_and_root_keeps_the_reserve() {
        let w = watchers(10, 4, 3);
        let mine: Vec<_> = (0..4).map(|_| w.admit(Some(1000)).unwrap()).collect();
        let refused = w.admit(Some(1000)).unwrap_err();
        assert_eq!(refused.limit_key(), Some("max_watchers_per_uid"));
        assert!(refused.to_string().contains("uid 1000"), "{refused}");
        let _others: Vec<_> = (0..3).map(|_| w.admit(Some(1001)).unwrap()).collect();
        // 7 open: the last 3 are root's and the daemon's.
        assert_eq!(
            w.admit(Some(1002)).unwrap_err().limit_key(),
            Some("reserved_watchers")
        );
        assert_eq!(
            w.admit(None).unwrap_err().limit_key(),
            Some("reserved_watchers")
        );
        let _root: Vec<_> = (0..2).map(|_| w.admit(Some(0)).unwrap()).collect();
        let _own = w.admit(Some(999)).unwrap();
        assert_eq!(
            w.admit(Some(0)).unwrap_err().limit_key(),
            Some("max_watchers")
        );
        drop(mine);
        assert_eq!(w.open(), 6);
        assert!(w.admit(Some(1000)).is_ok(), "places come back");
    }

    #[test]
    fn unidentified_callers_share_one_share() {
        let w = watchers(10, 2, 0);
        let _a = w.admit(None).unwrap();
        let _b = w.admit(None).unwrap();
        let refused = w.admit(None).unwrap_err();
        assert!(refused.to_string().contains("cannot identify"), "{refused}");
    }

    #[test]
    fn limits_that_leave_nothing_are_refused_naming_the_key() {
        let bad = |max, per_uid, reserved| {
            WatcherLimits {
                max,
                per_uid,
                reserved,
            }
            .check()
            .unwrap_err()
            .0
        };
        assert_eq!(bad(0, 1, 0), "max_watchers");
        assert_eq!(bad(10, 0, 0), "max_watchers_per_uid");
        assert_eq!(bad(10, 1, 10), "reserved_watchers");
        assert!(WatcherLimits::default().check().is_ok());
    }
}
