//! An accepted connection as the server sees it: the socket, wrapped to count what is written,
//! to run the connection's timers, and to close it when it is cut.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

use super::activity::{Peer, STALLED, STALL_TIMEOUT, STUCK};
use super::admission::Slot;
use super::{describe, Limits};

/// An accepted connection: the socket, who is on the other end, and its timeouts.
pub struct Conn<S> {
    io: S,
    peer: Peer,
    limits: Limits,
    check: Pin<Box<Sleep>>,
    _slot: Slot,
}

impl<S> Conn<S> {
    pub(super) fn new(io: S, peer: Peer, limits: Limits, slot: Slot) -> Self {
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
