//! Accepting connections under limits, for both listeners (TCP and the Unix socket):
//!
//! - **Who is calling**, found once per connection: SO_PEERCRED on the Unix socket; on loopback
//!   TCP, the uid owning the client's socket, from the kernel's socket table
//!   ([`crate::network::peer_uid`]); remote TCP callers are known by address only.
//! - **How many connections**: at most `max_connections` at once, and at most
//!   `max_connections_per_peer` per uid (local callers) or per address (remote ones), so one
//!   local user cannot take every slot. A connection over a limit is closed at once and logged
//!   (at most once a second per reason).
//! - **How long an idle connection lives**: one that sends no request within
//!   `first_request_timeout`, or has none in flight for `idle_timeout`, is closed (a request
//!   in flight, a Watch stream included, keeps it open).
//! - **Out of descriptors**: accept(2) failing with EMFILE/ENFILE backs off (10 ms doubling to
//!   1 s) instead of spinning, and says so once per episode.
//! - **Answers nobody reads**: each connection counts the response bytes made for it and the
//!   bytes written to its socket; `api::activity` refuses new requests on a connection with more
//!   than [`MAX_UNREAD`] waiting (HTTP/2 lets a client ask without reading the answers), event
//!   streams on it are ended, and a connection that stays over it with nothing written for
//!   [`STALL_TIMEOUT`] is closed: only closing frees what HTTP/2 holds for streams whose client
//!   stopped granting window. Its memory is then handed back to the system
//!   ([`crate::memory`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

use crate::network::LoopbackPeer;

/// Response bytes a connection may leave unread before its new requests are refused.
pub const MAX_UNREAD: u64 = 1024 * 1024;
/// How long a connection may stay over [`MAX_UNREAD`] with nothing written before it is closed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

const STALLED: &str = "closing a connection that does not read its answers";
const STUCK: &str = "closing a connection whose event stream stopped reading";

const CLOSED_BEFORE_ACCEPT: &str =
    "closing a loopback connection whose client closed it before it was accepted";

/// A loopback connection closed unserved: its client closed it before it was accepted.
#[derive(Debug, thiserror::Error)]
#[error("{CLOSED_BEFORE_ACCEPT}")]
struct ClosedBeforeAccept;

impl ClosedBeforeAccept {
    fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|r| r.is::<Self>())
    }
}

/// The limits on connections (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub first_request_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_peer: 64,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Whose connections count together against the per-peer limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    Uid(u32),
    Addr(IpAddr),
    Unknown,
}

/// Requests on one connection: how many are in flight, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds after `born` when the last request ended.
    last_end_ms: AtomicU64,
    /// Response bytes handed to the HTTP layer, and bytes written to the socket: the
    /// difference is what waits for a client that does not read.
    produced: AtomicU64,
    written: AtomicU64,
    /// Milliseconds after `born` when bytes were last written to the socket.
    last_write_ms: AtomicU64,
    /// Whether the connection ever had more than [`MAX_UNREAD`] waiting, or was cut (it made the
    /// daemon hold memory worth handing back when it closes).
    was_over: std::sync::atomic::AtomicBool,
    /// Closed by the daemon ([`Peer::cut`]): its reader is woken to end it.
    cut: std::sync::atomic::AtomicBool,
    reader: futures_util::task::AtomicWaker,
}

impl Activity {
    fn new() -> Self {
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

    fn unread(&self) -> u64 {
        self.produced
            .load(Ordering::Acquire)
            .saturating_sub(self.written.load(Ordering::Acquire))
    }

    /// Why the connection should be closed now, and otherwise when to look again.
    fn verdict(&self, limits: &Limits) -> Result<Duration, &'static str> {
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
    activity: Arc<Activity>,
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

    fn key(&self) -> PeerKey {
        match (self.uid, self.addr) {
            (Some(uid), _) => PeerKey::Uid(uid),
            (None, Some(addr)) => PeerKey::Addr(addr.ip()),
            (None, None) => PeerKey::Unknown,
        }
    }
}

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

    fn admit(self: &Arc<Self>, key: PeerKey, limits: &Limits) -> Result<Slot, &'static str> {
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
    fn log_once_a_second(&self, what: &'static str, detail: impl FnOnce() -> String) {
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
struct Slot {
    census: Arc<Census>,
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

/// An accepted connection: the socket, who is on the other end, and its timeouts.
pub struct Conn<S> {
    io: S,
    peer: Peer,
    limits: Limits,
    check: Pin<Box<Sleep>>,
    _slot: Slot,
}

impl<S> Conn<S> {
    fn new(io: S, peer: Peer, limits: Limits, slot: Slot) -> Self {
        let first = limits.first_request_timeout;
        Self {
            io,
            peer,
            limits,
            check: Box::pin(tokio::time::sleep(first)),
            _slot: slot,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // The server always has a read pending on a connection: the timer is polled here,
        // and a cut is noticed here.
        self.peer.activity.reader.register(cx.waker());
        if self.peer.activity.cut.load(Ordering::Acquire) {
            let peer = describe(&self.peer);
            self._slot.census.log_once_a_second(STUCK, || {
                format!("{peer}: an event stream took nothing, not even its last word")
            });
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, STUCK)));
        }
        while self.check.as_mut().poll(cx).is_ready() {
            match self.peer.activity.verdict(&self.limits) {
                Ok(next) => {
                    let at = tokio::time::Instant::now() + next;
                    self.check.as_mut().reset(at);
                }
                Err(why) if why == STALLED => {
                    let (peer, unread) = (describe(&self.peer), self.peer.unread());
                    self._slot.census.log_once_a_second(STALLED, || {
                        format!(
                            "{peer} has {unread} bytes unread and took none for {STALL_TIMEOUT:?}"
                        )
                    });
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
                }
                Err(why) => {
                    tracing::debug!(peer = ?self.peer.addr, uid = ?self.peer.uid, "closing a connection: {why}");
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
                }
            }
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.count_written(&r);
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.count_written(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<S> Conn<S> {
    fn count_written(&self, r: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = r {
            let a = &self.peer.activity;
            a.written.fetch_add(*n as u64, Ordering::AcqRel);
            a.last_write_ms
                .store(a.born.elapsed().as_millis() as u64, Ordering::Release);
        }
    }
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        // What this connection made the daemon hold is free now; give it back to the system.
        if self.peer.activity.was_over.load(Ordering::Acquire) {
            crate::memory::give_back_freed();
        }
    }
}

impl<S> Connected for Conn<S> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

/// Whether an accept error means this process is short of something (back off) rather than
/// one failed connection (go on).
#[cfg(unix)]
fn is_starved(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// WSAEMFILE, WSAENOBUFS.
#[cfg(windows)]
fn is_starved(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(10024) | Some(10055))
}

/// Accepts while back-off, identification and limits say so.
trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Peer)>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_keepalive(true);
        // A local caller is identified by the socket table, as the Unix socket's are by the
        // kernel; a failed lookup leaves it unknown (a remote caller's standing). A loopback
        // client whose socket is already closed can be answered by nobody and named by nobody:
        // its queued request is not served (see `network::census::peer`).
        let local = stream.local_addr().ok();
        let uid = match local {
            Some(ours) if crate::network::is_loopback(addr.ip()) => {
                match crate::network::peer_uid(ours, addr) {
                    Ok(LoopbackPeer::Uid(uid)) => Some(uid),
                    Ok(LoopbackPeer::Gone) => {
                        return Err(io::Error::other(ClosedBeforeAccept));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, %addr, "cannot identify a loopback caller");
                        None
                    }
                }
            }
            _ => None,
        };
        let peer = Peer {
            uid,
            pid: None,
            addr: Some(addr),
            local,
            activity: Arc::new(Activity::new()),
        };
        Ok((stream, peer))
    }
}

#[cfg(unix)]
impl Accept for UnixListener {
    type Io = UnixStream;

    async fn accept(&self) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = UnixListener::accept(self).await?;
        let cred = stream.peer_cred().ok();
        let peer = Peer {
            uid: cred.map(|c| c.uid()),
            pid: cred.and_then(|c| c.pid()),
            addr: None,
            local: None,
            activity: Arc::new(Activity::new()),
        };
        Ok((stream, peer))
    }
}

/// The connections of `listener` that the limits admit, as the stream tonic serves.
fn incoming<L: Accept>(
    listener: L,
    limits: Limits,
    census: Arc<Census>,
) -> impl Stream<Item = io::Result<Conn<L::Io>>> {
    futures_util::stream::unfold(
        (listener, limits, census, Duration::ZERO),
        |(listener, limits, census, mut backoff)| async move {
            loop {
                match listener.accept().await {
                    Ok((io, peer)) => {
                        if !backoff.is_zero() {
                            tracing::info!("accepting connections again");
                            backoff = Duration::ZERO;
                        }
                        match census.admit(peer.key(), &limits) {
                            Ok(slot) => {
                                let conn = Conn::new(io, peer, limits, slot);
                                return Some((Ok(conn), (listener, limits, census, backoff)));
                            }
                            Err(why) => census.log_once_a_second(why, || {
                                format!(
                                    "closing a connection from {} ({} open)",
                                    describe(&peer),
                                    census.open()
                                )
                            }),
                        }
                    }
                    Err(e) if is_starved(&e) => {
                        if backoff.is_zero() {
                            tracing::warn!(error = %e, open = census.open(), "cannot accept connections: the daemon is out of descriptors or memory; backing off until some close");
                        }
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        tokio::time::sleep(backoff).await;
                    }
                    Err(e) if ClosedBeforeAccept::is(&e) => census
                        .log_once_a_second(CLOSED_BEFORE_ACCEPT, || {
                            format!("nobody to answer or act for ({} open)", census.open())
                        }),
                    // One connection failed (reset before accept, ...): go on.
                    Err(e) => tracing::debug!(error = %e, "accept failed"),
                }
            }
        },
    )
}

fn describe(peer: &Peer) -> String {
    match (peer.uid, peer.addr) {
        (Some(uid), Some(addr)) => format!("uid {uid} at {addr}"),
        (Some(uid), None) => format!("uid {uid}"),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "an unknown peer".into(),
    }
}

pub fn tcp(
    listener: TcpListener,
    limits: Limits,
    census: Arc<Census>,
) -> impl Stream<Item = io::Result<Conn<TcpStream>>> {
    incoming(listener, limits, census)
}

#[cfg(unix)]
pub fn unix(
    listener: UnixListener,
    limits: Limits,
    census: Arc<Census>,
) -> impl Stream<Item = io::Result<Conn<UnixStream>>> {
    incoming(listener, limits, census)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_peer: usize, total: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_peer: per_peer,
            ..Limits::default()
        }
    }

    #[test]
    fn the_limits_count_per_peer_and_in_total_and_slots_come_back() {
        let census = Arc::new(Census::default());
        let l = limits(2, 3);
        let a1 = census.admit(PeerKey::Uid(1000), &l).unwrap();
        let _a2 = census.admit(PeerKey::Uid(1000), &l).unwrap();
        assert!(census.admit(PeerKey::Uid(1000), &l).is_err(), "per peer");
        let _b = census.admit(PeerKey::Uid(0), &l).unwrap();
        assert!(census.admit(PeerKey::Uid(0), &l).is_err(), "in total");
        drop(a1);
        assert_eq!(census.open(), 2);
        assert!(census.admit(PeerKey::Uid(1000), &l).is_ok());
    }

    #[test]
    fn a_connection_with_a_request_in_flight_is_never_idle() {
        let l = Limits {
            first_request_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            ..Limits::default()
        };
        let a = Arc::new(Activity::new());
        assert!(a.verdict(&l).is_err(), "no first request");
        let peer = Peer {
            uid: None,
            pid: None,
            addr: None,
            local: None,
            activity: a.clone(),
        };
        let guard = peer.begin();
        assert!(a.verdict(&l).is_ok(), "in flight");
        drop(guard);
        assert!(a.verdict(&l).is_err(), "idle again");
    }
}
