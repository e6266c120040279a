//! What one connection is doing: requests in flight, when the last ended, and the answers made
//! for it against the bytes it took off the socket; from these, whether to close it now.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Limits;

/// Response bytes a connection may leave unread before its new requests are refused.
pub const MAX_UNREAD: u64 = 1024 * 1024;
/// How long a connection may stay over [`MAX_UNREAD`] with nothing written before it is closed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) const STALLED: &str = "closing a connection that does not read its answers";
pub(super) const STUCK: &str = "closing a connection whose event stream stopped reading";

/// Whose connections count together against the per-peer limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum PeerKey {
    Uid(u32),
    Addr(IpAddr),
    Unknown,
}

/// Requests on one connection: how many are in flight, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    pub(super) born: Instant,
    pub(super) in_flight: AtomicUsize,
    pub(super) requests: AtomicU64,
    /// Milliseconds after `born` when the last request ended.
    pub(super) last_end_ms: AtomicU64,
    /// Response bytes handed to the HTTP layer, and bytes written to the socket: the
    /// difference is what waits for a client that does not read.
    pub(super) produced: AtomicU64,
    pub(super) written: AtomicU64,
    /// Milliseconds after `born` when bytes were last written to the socket.
    pub(super) last_write_ms: AtomicU64,
    /// Whether the connection ever had more than [`MAX_UNREAD`] waiting, or was cut (it made the
    /// daemon hold memory worth handing back when it closes).
    pub(super) was_over: std::sync::atomic::AtomicBool,
    /// Closed by the daemon ([`Peer::cut`]): its reader is woken to end it.
    pub(super) cut: std::sync::atomic::AtomicBool,
    pub(super) reader: futures_util::task::AtomicWaker,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_end_ms: AtomicU64::new(0),
            produced: AtomicU64::new(0),
            written: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            was_over: std::sync::atomic::AtomicBool::new(false),
            cut: std::sync::atomic::AtomicBool::new(false),
            reader: futures_util::task::AtomicWaker::new(),
        }
    }

    pub(super) fn unread(&self) -> u64 {
        self.produced
            .load(Ordering::Acquire)
            .saturating_sub(self.written.load(Ordering::Acquire))
    }

    /// Why the connection should be closed now, and otherwise when to look again.
    pub(super) fn verdict(&self, limits: &Limits) -> Result<Duration, &'static str> {
        let age = self.born.elapsed();
        // Answers pile up unread, and none was taken lately: in flight or not (an ended
        // stream's data waits in HTTP/2's buffers too), only closing frees them.
        if self.unread() > MAX_UNREAD {
            self.was_over.store(true, Ordering::Release);
            let quiet = age.saturating_sub(Duration::from_millis(
                self.last_write_ms.load(Ordering::Acquire),
            ));
            return STALL_TIMEOUT
                .checked_sub(quiet)
                .filter(|d| !d.is_zero())
                .ok_or(STALLED);
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Ok(limits.idle_timeout.min(STALL_TIMEOUT));
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return limits
                .first_request_timeout
                .checked_sub(age)
                .filter(|d| !d.is_zero())
                .ok_or("no request within the first-request timeout");
        }
        let idle = age.saturating_sub(Duration::from_millis(
            self.last_end_ms.load(Ordering::Acquire),
        ));
        limits
            .idle_timeout
            .checked_sub(idle)
            .filter(|d| !d.is_zero())
            .ok_or("idle for the idle timeout")
    }
}

/// Marks a request in flight on its connection until dropped (with the response's last byte).
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_end_ms
            .store(a.born.elapsed().as_millis() as u64, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The other end of a connection, as the kernel told us when it was accepted. Every request
/// on the connection carries it (tonic puts it in the request's extensions).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The caller's uid: SO_PEERCRED on the Unix socket, the socket table on loopback TCP.
    pub uid: Option<u32>,
    /// The caller's pid (Unix socket only).
    pub pid: Option<i32>,
    /// The caller's address (TCP only).
    pub addr: Option<SocketAddr>,
    /// The address the caller connected to (TCP only): the name a client may use in `Host`.
    pub local: Option<SocketAddr>,
    pub(super) activity: Arc<Activity>,
}

impl Peer {
    /// Response bytes made for this connection that it has not yet taken off the socket.
    pub fn unread(&self) -> u64 {
        self.activity.unread()
    }

    /// Whether answers pile up unread on this connection (past [`MAX_UNREAD`]).
    pub fn is_lagging(&self) -> bool {
        let over = self.unread() > MAX_UNREAD;
        if over {
            self.activity.was_over.store(true, Ordering::Release);
        }
        over
    }

    /// `n` more response bytes made for this connection.
    pub fn produced(&self, n: usize) {
        self.activity.produced.fetch_add(n as u64, Ordering::AcqRel);
    }

    /// Closes this connection: one of its event streams is stuck behind a client that reads
    /// nothing, and only closing frees what HTTP/2 holds for it.
    pub fn cut(&self) {
        let a = &self.activity;
        a.was_over.store(true, Ordering::Release);
        a.cut.store(true, Ordering::Release);
        a.reader.wake();
    }

    /// A request starts on this connection; it ends when the guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.requests.fetch_add(1, Ordering::AcqRel);
        InFlight(self.activity.clone())
    }

    pub(super) fn key(&self) -> PeerKey {
        match (self.uid, self.addr) {
            (Some(uid), _) => PeerKey::Uid(uid),
            (None, Some(addr)) => PeerKey::Addr(addr.ip()),
            (None, None) => PeerKey::Unknown,
        }
    }
}
