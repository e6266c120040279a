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

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

use crate::network::LoopbackPeer;

mod activity;
mod admission;
mod conn;

pub use activity::{Activity, InFlight, Peer, MAX_UNREAD, STALL_TIMEOUT};
pub use admission::Census;
pub use conn::Conn;

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
    use super::activity::PeerKey;
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
