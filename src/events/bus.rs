//! Live fan-out of numbered events. Publishing never waits: events go into one ring (a
//! broadcast channel), and each watcher has a small task moving the events it wants from the
//! ring into its own bounded queue. A watcher whose queue is full (it stopped reading) is ended
//! at once and its place freed, never slowing the others; a watcher that goes away is cleaned
//! up at once; closing the bus ends every watcher. Who may hold how many watchers is
//! [`Watchers`]' rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};

use super::event::{Event, EventFilter};
use super::watchers::{SubscribeError, WatcherLimits, WatcherSlot, Watchers};

/// Events a watcher may have queued, unread, before it is ended.
pub const WATCH_BUFFER: usize = 1024;

pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    watchers: Arc<Watchers>,
    buffer: usize,
    closing: watch::Sender<bool>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(WATCH_BUFFER, WatcherLimits::default())
    }
}

impl EventBus {
    pub fn new(buffer: usize, limits: WatcherLimits) -> Self {
        let buffer = buffer.max(1);
        let (sender, _) = broadcast::channel(buffer);
        let (closing, _) = watch::channel(false);
        Self {
            sender,
            watchers: Arc::new(Watchers::new(limits, own_uid())),
            buffer,
            closing,
        }
    }

    /// Hands `event` to every watcher. Callers publish in sequence order (the allocator does,
    /// under its lock).
    pub fn publish(&self, event: Arc<Event>) {
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// A new watcher, held by `uid` (None: a caller the daemon cannot identify), of every event
    /// published from now on that passes `filter`. Must be called within a Tokio runtime (the
    /// watcher's task is spawned on it).
    pub fn subscribe(
        &self,
        filter: EventFilter,
        uid: Option<u32>,
    ) -> Result<Subscription, SubscribeError> {
        if *self.closing.borrow() {
            return Err(SubscribeError::Closing);
        }
        let slot = self.watchers.admit(uid)?;
        let (queue, events) = mpsc::channel(self.buffer);
        let behind = Arc::new(AtomicU64::new(0));
        tokio::spawn(forward(
            self.sender.subscribe(),
            self.closing.subscribe(),
            filter,
            queue,
            behind.clone(),
            slot,
        ));
        Ok(Subscription { events, behind })
    }

    /// Watchers connected now.
    pub fn watchers(&self) -> usize {
        self.watchers.open()
    }

    /// Ends every subscription (shutdown) and refuses new ones.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// Moves one watcher's events from the ring into its queue until the watcher goes away, falls
/// behind, or the bus closes. Holds the watcher's place while it runs.
async fn forward(
    mut live: broadcast::Receiver<Arc<Event>>,
    mut closing: watch::Receiver<bool>,
    filter: EventFilter,
    queue: mpsc::Sender<Arc<Event>>,
    behind: Arc<AtomicU64>,
    _slot: WatcherSlot,
) {
    loop {
        if *closing.borrow_and_update() {
            return;
        }
        let received = tokio::select! {
            r = live.recv() => r,
            _ = queue.closed() => return,
            _ = closing.changed() => return,
        };
        match received {
            Ok(e) if filter.matches(&e) => {
                if queue.try_send(e).is_err() {
                    // Full (the watcher stopped reading) or closed (it left).
                    behind.store(queue.max_capacity() as u64, Ordering::Release);
                    return;
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                behind.store(n, Ordering::Release);
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The daemon's own uid, which shares root's standing for watchers.
#[cfg(unix)]
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn own_uid() -> u32 {
    0
}

/// What a watcher gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Event(Arc<Event>),
    /// The watcher fell this many events behind and was ended.
    FellBehind(u64),
    /// The daemon is shutting down.
    Closed,
}

/// One watcher's queue of live events, filtered.
pub struct Subscription {
    events: mpsc::Receiver<Arc<Event>>,
    behind: Arc<AtomicU64>,
}

impl Subscription {
    /// The next live event that passes the filter.
    pub async fn next(&mut self) -> Next {
        match self.events.recv().await {
            Some(e) => Next::Event(e),
            None => match self.behind.load(Ordering::Acquire) {
                0 => Next::Closed,
                n => Next::FellBehind(n),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::{EventDetail, NewEvent};
    use super::*;

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(
            NewEvent::system(
                "x".into(),
                EventDetail::PassCompleted {
                    allocations: 0,
                    issues: 0,
                    duration_ms: 0.0,
                },
            )
            .numbered(seq, 0),
        )
    }

    #[tokio::test]
    async fn a_slow_watcher_is_ended_and_the_limit_holds() {
        let limits = WatcherLimits {
            max: 2,
            per_uid: 2,
            reserved: 0,
        };
        let bus = EventBus::new(4, limits);
        let mut slow = bus.subscribe(EventFilter::default(), Some(0)).unwrap();
        let mut fast = bus.subscribe(EventFilter::default(), Some(0)).unwrap();
        assert!(matches!(
            bus.subscribe(EventFilter::default(), Some(0)),
            Err(SubscribeError::Full { open: 2 })
        ));
        for seq in 1..=6 {
            bus.publish(event(seq));
            assert_eq!(fast.next().await, Next::Event(event(seq)));
        }
        // The slow one's queue (4) filled: it was ended and its place freed, before it read.
        assert_eq!(bus.watchers(), 1);
        for seq in 1..=4 {
            assert_eq!(slow.next().await, Next::Event(event(seq)));
        }
        assert_eq!(slow.next().await, Next::FellBehind(4));
        drop(fast);
        for _ in 0..100 {
            if bus.watchers() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(bus.watchers(), 0, "a watcher that leaves frees its place");
        let mut last = bus.subscribe(EventFilter::default(), Some(0)).unwrap();
        bus.close();
        assert_eq!(last.next().await, Next::Closed);
        assert!(matches!(
            bus.subscribe(EventFilter::default(), Some(0)),
            Err(SubscribeError::Closing)
        ));
    }
}
