//! A watcher that falls behind is ended, for gRPC Watch and the REST event stream alike: when
//! its queue of events overflowed (it read too slowly), or when its connection has more than
//! `listener::MAX_UNREAD` of answers unread (it stopped reading; HTTP/2 would otherwise keep
//! buffering for it). Its last word says where to resume from the log; the listener closes a
//! connection that does not even take that (`listener::STALL_TIMEOUT`).

use axum::http::Extensions;

use crate::listener::Peer;

/// Why a watcher is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behind {
    /// Its queue overflowed: this many events were waiting.
    Events(u64),
    /// Its connection has this many bytes of answers unread.
    Unread(u64),
}

impl std::fmt::Display for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Events(n) => write!(f, "{n} events were waiting unread"),
            Self::Unread(n) => write!(f, "its connection has {n} bytes of answers unread"),
        }
    }
}

impl Behind {
    /// What the watcher is told, and logged (at most once a second).
    pub fn message(&self, resume_after: Option<u64>) -> String {
        let resume = match resume_after {
            Some(n) => format!("watch again with since_sequence {n} (Last-Event-ID: {n}) to resume where it stopped"),
            None => "its snapshot was not complete: watch again with a snapshot".into(),
        };
        // Queue overflows are logged where they are found (`events::bus`).
        if matches!(self, Self::Unread(_)) && BEHIND_LOG.ready() {
            tracing::warn!(resume_after, "a watcher fell behind and was ended: {self}");
        }
        format!("this watcher fell behind and was ended ({self}); {resume}")
    }
}

/// The lag rule of one request's connection.
#[derive(Clone)]
pub struct LagProbe(Option<Peer>);

impl LagProbe {
    pub fn of(extensions: &Extensions) -> Self {
        Self(super::caller::peer_of(extensions).cloned())
    }

    /// What the watcher's feed calls when it fell behind and took not even that: the
    /// connection is closed (HTTP/2 holds buffers for a stream it cannot send on).
    pub fn on_stuck(&self) -> Option<crate::events::OnStuck> {
        let peer = self.0.clone()?;
        Some(Box::new(move || peer.cut()))
    }

    /// Why the watcher must be ended now, if its connection has too much unread.
    pub fn behind(&self) -> Option<Behind> {
        let peer = self.0.as_ref()?;
        peer.is_lagging().then(|| Behind::Unread(peer.unread()))
    }
}

/// At most one line a second: thousands of watchers falling behind at once must not flood the
/// log.
static BEHIND_LOG: crate::logging::OncePerSecond = crate::logging::OncePerSecond::new();
