//! Watching the event log: a feed that starts where the watcher asks (now, after a sequence it
//! saw, or with a snapshot of the current allocations), replays what it missed from the log,
//! then follows live events, with no gap and no duplicate. Also paged history and compaction.
//!
//! Consistency comes from the allocator's lock: events are numbered, committed and published
//! under it, so subscribing and reading the log position (and the snapshot) under it too gives
//! an exact cut: everything up to that position is in the log, everything after arrives live.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::allocator::Allocator;
use super::error::PortsError;
use super::events_store::LogBounds;
use super::lease::Caller;
use crate::events::{AllocationView, Event, EventFilter, NewEvent, Next, OnStuck, Subscription};

/// Events read from the log per step of a replay (one short hold of the lock each).
const REPLAY_PAGE: usize = 256;
/// Most events one history page returns.
pub const MAX_HISTORY_PAGE: usize = 1000;

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Only what happens from now on.
    Live,
    /// Everything after this sequence (a resume); 0 means from the oldest retained event.
    After(u64),
    /// The current allocations first, then what happens after them.
    Snapshot,
}

impl WatchStart {
    /// The start a request asks for: a snapshot, or after the sequence it names
    /// (`after_field`, as the transport calls it), or live; a snapshot and a resume together
    /// are refused.
    pub fn requested(
        snapshot: bool,
        after: Option<u64>,
        after_field: &str,
    ) -> Result<Self, PortsError> {
        match (snapshot, after) {
            (true, Some(_)) => Err(PortsError::invalid(
                "snapshot",
                format!("a watch starts either with a snapshot or after {after_field}, not both"),
            )),
            (true, None) => Ok(Self::Snapshot),
            (false, Some(after)) => Ok(Self::After(after)),
            (false, None) => Ok(Self::Live),
        }
    }
}

/// What a watcher receives, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// One current allocation (snapshot watches).
    Existing(Box<AllocationView>),
    /// The snapshot is complete and consistent as of this sequence; events follow.
    SnapshotComplete {
        sequence: u64,
    },
    Event(Arc<Event>),
    /// The watcher fell this many events behind and is ended (it may resume from the log).
    FellBehind(u64),
}

pub struct Feed {
    allocator: Arc<Allocator>,
    /// The newest sequence when the watch started: live events come after it.
    position: u64,
    filter: EventFilter,
    pending: VecDeque<FeedItem>,
    /// Replay (after, until] from the log before going live.
    replay: Option<(u64, u64)>,
    live: Subscription,
    done: bool,
    /// The sequence this watcher has seen everything up to: where a resume starts (None while
    /// a snapshot is incomplete: such a watcher starts over with a snapshot).
    seen_through: Option<u64>,
}

impl Feed {
    /// The newest sequence when the watch started (live events follow it).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The sequence a watcher ended now resumes after (`since_sequence`, `Last-Event-ID`):
    /// everything up to it was handed out, nothing after it. None while a snapshot was still
    /// being handed out: the watcher must start over with one.
    pub fn resume_after(&self) -> Option<u64> {
        self.seen_through
    }

    /// The next item; None when the daemon shuts down, after [`FeedItem::FellBehind`] or after
    /// an error (the log could not be read, or was compacted under a replay).
    pub async fn next(&mut self) -> Option<Result<FeedItem, PortsError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(item) = self.pending.pop_front() {
                match &item {
                    FeedItem::Event(e) => self.seen_through = Some(e.sequence),
                    FeedItem::SnapshotComplete { sequence } => self.seen_through = Some(*sequence),
                    _ => {}
                }
                return Some(Ok(item));
            }
            if let Some((after, until)) = self.replay {
                match self
                    .allocator
                    .events_between(after, until, REPLAY_PAGE, &self.filter)
                {
                    Ok((events, scanned)) => {
                        self.replay =
                            (scanned < until && scanned > after).then_some((scanned, until));
                        self.pending
                            .extend(events.into_iter().map(|e| FeedItem::Event(Arc::new(e))));
                        continue;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            return match self.live.next().await {
                Next::Event(e) => {
                    self.seen_through = Some(e.sequence);
                    Some(Ok(FeedItem::Event(e)))
                }
                Next::FellBehind(n) => {
                    self.done = true;
                    Some(Ok(FeedItem::FellBehind(n)))
                }
                Next::Closed => None,
            };
        }
    }
}

impl Allocator {
    /// Where the event log stands now.
    pub fn log_bounds(&self) -> LogBounds {
        self.lock().log
    }

    /// Watchers connected now (every transport).
    pub fn watchers(&self) -> usize {
        self.bus.watchers()
    }

    /// Ends every watch (shutdown).
    pub fn close_watches(&self) {
        self.bus.close();
    }

    /// Starts a watch held by `caller` (see [`crate::events::WatcherLimits`]); `on_stuck` is
    /// called if the watcher falls behind and then does not even take that. A resume from a compacted position is refused with the oldest sequence
    /// still retained; one from beyond the newest event, with the newest.
    pub fn watch(
        self: &Arc<Self>,
        filter: EventFilter,
        start: WatchStart,
        caller: &Caller,
        on_stuck: Option<OnStuck>,
    ) -> Result<Feed, PortsError> {
        let st = self.lock();
        let log = st.log;
        let mut pending = VecDeque::new();
        let mut replay = None;
        match start {
            WatchStart::Live => {}
            WatchStart::After(after) => {
                if after < log.compacted_through {
                    return Err(PortsError::Compacted {
                        requested: after,
                        oldest_retained: log.oldest_retained(),
                    });
                }
                if after > log.last {
                    return Err(PortsError::AheadOfLog {
                        requested: after,
                        last: log.last,
                    });
                }
                replay = (after < log.last).then_some((after, log.last));
            }
            WatchStart::Snapshot => {
                pending.extend(
                    st.leases
                        .values()
                        .map(|a| Box::new(AllocationView::from(a)))
                        .filter(|a| filter.matches_allocation(a))
                        .map(FeedItem::Existing),
                );
                pending.push_back(FeedItem::SnapshotComplete { sequence: log.last });
            }
        }
        let live = self
            .bus
            .subscribe(filter.clone(), caller.uid, on_stuck)
            .map_err(PortsError::from)?;
        drop(st);
        // A resume has seen everything up to where it starts, a live watch up to now, a
        // snapshot nothing until it is complete.
        let seen_through = match start {
            WatchStart::After(after) => Some(after),
            WatchStart::Live => Some(log.last),
            WatchStart::Snapshot => None,
        };
        Ok(Feed {
            allocator: self.clone(),
            position: log.last,
            filter,
            pending,
            replay,
            live,
            done: false,
            seen_through,
        })
    }

    /// Up to `limit` logged events after `after` and up to `until` that pass `filter`, oldest
    /// first, with the last sequence looked at.
    pub fn events_between(
        &self,
        after: u64,
        until: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<(Vec<Event>, u64), PortsError> {
        let st = self.lock();
        // Compacted under a replay: the events after `after` are gone, and saying nothing
        // would leave a gap.
        if after < st.log.compacted_through {
            return Err(PortsError::Compacted {
                requested: after,
                oldest_retained: st.log.oldest_retained(),
            });
        }
        Ok(st.store.events_between(after, until, limit, filter)?)
    }

    /// Newest first: logged events passing `filter` with a sequence below `before` (0: from
    /// the newest), at most `limit` (capped at [`MAX_HISTORY_PAGE`]).
    pub fn history(
        &self,
        filter: &EventFilter,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Event>, PortsError> {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        Ok(self.lock().store.history(filter, before, limit)?)
    }

    /// Records and publishes an event that changes no allocation (a watchdog finding).
    pub fn record_event(&self, ev: NewEvent) -> Result<Arc<Event>, PortsError> {
        let mut st = self.lock();
        let now = self.host.now();
        self.commit_event(&mut st, now, ev, |s, e| s.append(e))
    }

    /// Drops logged events beyond the newest `keep` and those older than `max_age`.
    pub fn compact_events(&self, keep: u64, max_age: Duration) -> Result<LogBounds, PortsError> {
        let mut st = self.lock();
        let cutoff = self.host.now().wall_ms - max_age.as_millis() as i64;
        let bounds = st.store.compact_events(keep, cutoff)?;
        if bounds.compacted_through != st.log.compacted_through {
            tracing::debug!(through = bounds.compacted_through, "event log compacted");
        }
        st.log = bounds;
        Ok(bounds)
    }
}
