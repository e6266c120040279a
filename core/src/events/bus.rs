//! Live fan-out of numbered events. Publishing never waits: events go into one ring (a
//! broadcast channel), and each watcher has a small task moving the events it wants from the
//! ring into its own bounded queue. A watcher whose queue is full (it stopped reading) is ended
//! at once and its place freed, never slowing the others; a watcher that goes away is cleaned
//! up at once; closing the bus ends every watcher. Who may hold how many watchers is
//! [`Watchers`]' rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::event::{Event, EventFilter};
use super::watchers::{SubscribeError, WatcherLimits, WatcherSlot, Watchers};

/// Events a watcher may have queued, unread, before it is ended.
pub const WATCH_BUFFER: usize = 1024;
/// How long a watcher may leave its queued events untaken before it is ended: its transport
/// stopped reading (an HTTP/2 stream whose client grants no window is never polled).
pub const LAG_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an ended watcher has to take its last word before it is declared stuck.
pub const STUCK_GRACE: Duration = Duration::from_secs(5);

/// Called once when a watcher that was ended does not even take that in [`STUCK_GRACE`]: the
/// transport frees what it holds for it (closes its connection).
pub type OnStuck = Box<dyn FnOnce() + Send>;

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
            watchers: Arc::new(Watchers::new(limits, crate::ports::daemon_uid())),
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
        on_stuck: Option<OnStuck>,
    ) -> Result<Subscription, SubscribeError> {
        if *self.closing.borrow() {
            return Err(SubscribeError::Closing);
        }
        let slot = self.watchers.admit(uid)?;
        let (queue, events) = mpsc::channel(self.buffer);
        let progress = Arc::new(Progress::default());
        tokio::spawn(forward(
            Forward {
                live: self.sender.subscribe(),
                closing: self.closing.subscribe(),
                filter,
                queue,
                progress: progress.clone(),
            },
            slot,
            on_stuck,
        ));
        Ok(Subscription { events, progress })
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

/// What a watcher's consumer has done, as its forwarding task sees it.
#[derive(Debug, Default)]
struct Progress {
    /// Events it took from its queue.
    taken: AtomicU64,
    /// Why it was ended: how many events it was behind (0 while it is not).
    behind: AtomicU64,
    /// The consumer went away (its subscription was dropped).
    gone: tokio::sync::Notify,
}

struct Forward {
    live: broadcast::Receiver<Arc<Event>>,
    closing: watch::Receiver<bool>,
    filter: EventFilter,
    queue: mpsc::Sender<Arc<Event>>,
    progress: Arc<Progress>,
}

/// Since when a watcher has had events queued without taking any (None: it keeps up).
#[derive(Default)]
struct Backlog {
    since: Option<(tokio::time::Instant, u64)>,
}

impl Backlog {
    /// Whether the watcher has sat on queued events for [`LAG_TIMEOUT`].
    fn stuck(&mut self, queued: usize, taken: u64) -> bool {
        let now = tokio::time::Instant::now();
        match self.since {
            _ if queued == 0 => self.since = None,
            Some((at, seen)) if seen == taken => return now - at >= LAG_TIMEOUT,
            _ => self.since = Some((now, taken)),
        }
        false
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        self.since.map(|(at, _)| at + LAG_TIMEOUT)
    }
}

/// Moves one watcher's events from the ring into its queue until the watcher goes away, falls
/// behind (its queue is full, or it took nothing queued for [`LAG_TIMEOUT`]), or the bus
/// closes. Holds the watcher's place while it runs. A watcher that fell behind and does not
/// take even that within [`STUCK_GRACE`] is reported stuck (`on_stuck`).
async fn forward(mut f: Forward, slot: WatcherSlot, on_stuck: Option<OnStuck>) {
    let behind = run(&mut f).await;
    drop(slot);
    let Some(n) = behind else { return };
    f.progress.behind.store(n.max(1), Ordering::Release);
    log_fell_behind(n);
    // The queue's end: a consumer waiting on it wakes and learns it fell behind.
    let Forward {
        queue, progress, ..
    } = f;
    drop(queue);
    let taken = tokio::select! {
        _ = progress.gone.notified() => true,
        _ = tokio::time::sleep(STUCK_GRACE) => false,
    };
    if !taken {
        if let Some(on_stuck) = on_stuck {
            on_stuck();
        }
    }
}

/// The forwarding loop: None when the watcher left or the bus closed, else how far behind the
/// watcher fell.
async fn run(f: &mut Forward) -> Option<u64> {
    let mut backlog = Backlog::default();
    loop {
        if *f.closing.borrow_and_update() {
            return None;
        }
        let check = backlog.deadline();
        let received = tokio::select! {
            r = f.live.recv() => Some(r),
            _ = f.queue.closed() => return None,
            _ = f.closing.changed() => return None,
            _ = sleep_until(check) => None,
        };
        match received {
            None => {}
            Some(Ok(e)) if f.filter.matches(&e) => match f.queue.try_send(e) {
                Ok(()) => {}
                // Full (the watcher stopped reading) or closed (it left).
                Err(_) => return (!f.queue.is_closed()).then_some(f.queue.max_capacity() as u64),
            },
            Some(Ok(_)) => {}
            Some(Err(broadcast::error::RecvError::Lagged(n))) => return Some(n),
            Some(Err(broadcast::error::RecvError::Closed)) => return None,
        }
        let queued = f.queue.max_capacity() - f.queue.capacity();
        if backlog.stuck(queued, f.progress.taken.load(Ordering::Acquire)) {
            return Some(queued as u64);
        }
    }
}

/// At most one line a second: thousands of watchers falling behind at once must not flood the
/// log.
fn log_fell_behind(queued: u64) {
    static LOG: crate::throttle::OncePerSecond = crate::throttle::OncePerSecond::new();
    if !LOG.ready() {
        return;
    }
    tracing::warn!(
        queued,
        "a watcher fell behind and was ended: {queued} events waited unread (at most {WATCH_BUFFER}, none taken for {LAG_TIMEOUT:?} at most)"
    );
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
    progress: Arc<Progress>,
}

impl Subscription {
    /// The next live event that passes the filter. A watcher that fell behind gets that at
    /// once, without the events still queued for it (it resumes from the log).
    pub async fn next(&mut self) -> Next {
        let behind = || self.progress.behind.load(Ordering::Acquire);
        if behind() > 0 {
            self.events.close();
            return Next::FellBehind(behind());
        }
        match self.events.recv().await {
            Some(e) => {
                self.progress.taken.fetch_add(1, Ordering::AcqRel);
                Next::Event(e)
            }
            None => match self.progress.behind.load(Ordering::Acquire) {
                0 => Next::Closed,
                n => Next::FellBehind(n),
            },
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.progress.gone.notify_one();
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
                    duration_ms: 0,
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
        let mut slow = bus
            .subscribe(EventFilter::default(), Some(0), None)
            .unwrap();
        let mut fast = bus
            .subscribe(EventFilter::default(), Some(0), None)
            .unwrap();
        assert!(matches!(
            bus.subscribe(EventFilter::default(), Some(0), None),
            Err(SubscribeError::Full { open: 2 })
        ));
        for seq in 1..=6 {
            bus.publish(event(seq));
            assert_eq!(fast.next().await, Next::Event(event(seq)));
        }
        // The slow one's queue (4) filled: it was ended and its place freed, before it read,
        // and it learns so at once (what was queued is dropped: it resumes from the log).
        assert_eq!(bus.watchers(), 1);
        assert_eq!(slow.next().await, Next::FellBehind(4));
        drop(fast);
        for _ in 0..100 {
            if bus.watchers() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(bus.watchers(), 0, "a watcher that leaves frees its place");
        let mut last = bus
            .subscribe(EventFilter::default(), Some(0), None)
            .unwrap();
        bus.close();
        assert_eq!(last.next().await, Next::Closed);
        assert!(matches!(
            bus.subscribe(EventFilter::default(), Some(0), None),
            Err(SubscribeError::Closing)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_that_takes_nothing_is_ended_and_then_reported_stuck() {
        let bus = EventBus::new(64, WatcherLimits::default());
        let stuck = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stuck.clone();
        let on_stuck: OnStuck = Box::new(move || flag.store(true, Ordering::Release));
        let mut idle = bus
            .subscribe(EventFilter::default(), Some(0), None)
            .unwrap();
        let _never = bus
            .subscribe(EventFilter::default(), Some(0), Some(on_stuck))
            .unwrap();
        // Quiet for a long while is not lagging.
        tokio::time::sleep(LAG_TIMEOUT * 3).await;
        bus.publish(event(1));
        assert_eq!(idle.next().await, Next::Event(event(1)));
        assert_eq!(bus.watchers(), 2);
        // One that sits on a queued event for the lag timeout is ended...
        tokio::time::sleep(LAG_TIMEOUT + Duration::from_millis(10)).await;
        assert_eq!(bus.watchers(), 1);
        assert!(!stuck.load(Ordering::Acquire));
        // ... and, not taking even that, reported stuck after the grace.
        tokio::time::sleep(STUCK_GRACE + Duration::from_millis(10)).await;
        assert!(stuck.load(Ordering::Acquire));
    }
}
