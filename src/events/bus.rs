//! Live fan-out of numbered events. One bounded ring (a broadcast channel) serves every
//! watcher: memory does not grow with watchers or with a slow one. A watcher that falls more
//! than the ring behind is told so and ended, never slowing the others; a dropped subscription
//! frees its place at once; closing the bus ends every subscription.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::event::{Event, EventFilter};

/// Events a watcher may be behind before it is ended.
pub const WATCH_BUFFER: usize = 1024;
/// Watchers at once, over every transport.
pub const MAX_WATCHERS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("too many watchers: {limit} are connected (the daemon's limit); close one and retry")]
    TooMany { limit: usize },
    #[error("the daemon is shutting down")]
    Closing,
}

pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    watchers: Arc<AtomicUsize>,
    max_watchers: usize,
    closing: watch::Sender<bool>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(WATCH_BUFFER, MAX_WATCHERS)
    }
}

impl EventBus {
    pub fn new(buffer: usize, max_watchers: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        let (closing, _) = watch::channel(false);
        Self {
            sender,
            watchers: Arc::default(),
            max_watchers,
            closing,
        }
    }

    /// Hands `event` to every watcher. Callers publish in sequence order (the allocator does,
    /// under its lock).
    pub fn publish(&self, event: Arc<Event>) {
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// A new watcher of every event published from now on.
    pub fn subscribe(&self, filter: EventFilter) -> Result<Subscription, SubscribeError> {
        if *self.closing.borrow() {
            return Err(SubscribeError::Closing);
        }
        let taken = self.watchers.fetch_add(1, Ordering::AcqRel);
        let guard = WatcherSlot(self.watchers.clone());
        if taken >= self.max_watchers {
            tracing::warn!(
                limit = self.max_watchers,
                "watcher refused: the limit of concurrent watchers is reached"
            );
            return Err(SubscribeError::TooMany {
                limit: self.max_watchers,
            });
        }
        Ok(Subscription {
            live: self.sender.subscribe(),
            closing: self.closing.subscribe(),
            filter,
            _slot: guard,
        })
    }

    /// Watchers connected now.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Acquire)
    }

    /// Ends every subscription (shutdown) and refuses new ones.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// Frees a watcher's place when its subscription is dropped (client gone, stream ended).
struct WatcherSlot(Arc<AtomicUsize>);

impl Drop for WatcherSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a watcher gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Event(Arc<Event>),
    /// The watcher fell this many events behind the ring and was ended.
    FellBehind(u64),
    /// The daemon is shutting down.
    Closed,
}

/// One watcher's view of the live events, filtered.
pub struct Subscription {
    live: broadcast::Receiver<Arc<Event>>,
    closing: watch::Receiver<bool>,
    filter: EventFilter,
    _slot: WatcherSlot,
}

impl Subscription {
    pub fn filter(&self) -> &EventFilter {
        &self.filter
    }

    /// The next live event that passes the filter.
    pub async fn next(&mut self) -> Next {
        loop {
            if *self.closing.borrow() {
                return Next::Closed;
            }
            let received = tokio::select! {
                r = self.live.recv() => r,
                _ = self.closing.changed() => return Next::Closed,
            };
            match received {
                Ok(e) if self.filter.matches(&e) => return Next::Event(e),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => return Next::FellBehind(n),
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
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
        let bus = EventBus::new(4, 2);
        let mut slow = bus.subscribe(EventFilter::default()).unwrap();
        let mut fast = bus.subscribe(EventFilter::default()).unwrap();
        assert!(matches!(
            bus.subscribe(EventFilter::default()),
            Err(SubscribeError::TooMany { limit: 2 })
        ));
        for seq in 1..=6 {
            bus.publish(event(seq));
            assert_eq!(fast.next().await, Next::Event(event(seq)));
        }
        assert!(matches!(slow.next().await, Next::FellBehind(2)));
        drop(slow);
        assert_eq!(bus.watchers(), 1);
        bus.close();
        assert_eq!(fast.next().await, Next::Closed);
    }
}
