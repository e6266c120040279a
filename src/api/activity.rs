//! Marks each request in flight on its connection until the last byte of its answer (a Watch
//! stream stays in flight while it streams), so the listener closes only connections that are
//! really idle; counts the answer's bytes, and refuses new requests on a connection that has
//! more than `listener::MAX_UNREAD` of earlier answers waiting (a client that asks and never
//! reads must not make the daemon hold its answers without bound).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::observe::is_grpc;
use super::rest::ApiError;
use crate::listener::{InFlight, Peer, MAX_UNREAD};

/// A response body that counts its bytes for its connection and holds its request's in-flight
/// mark until it ends or is dropped.
struct Tracked {
    inner: Body,
    peer: Peer,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.peer.produced(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// At most one refusal line a second: a client asking in a loop must not flood the log.
static REFUSAL_LOG: crate::logging::OncePerSecond = crate::logging::OncePerSecond::new();

fn unread_refusal(grpc: bool, unread: u64) -> Response {
    let status = tonic::Status::resource_exhausted(format!(
        "this connection has {unread} bytes of earlier answers unread (at most {MAX_UNREAD}): read them before asking more"
    ));
    if grpc {
        let (parts, ()) = status.into_http::<()>().into_parts();
        Response::from_parts(parts, Body::empty())
    } else {
        ApiError::new(status).into_response()
    }
}

pub async fn track(req: Request, next: Next) -> Response {
    let Some(peer) = super::caller::peer_of(req.extensions()).cloned() else {
        return next.run(req).await;
    };
    if peer.is_lagging() {
        let unread = peer.unread();
        if REFUSAL_LOG.ready() {
            tracing::warn!(uid = ?peer.uid, addr = ?peer.addr, unread, "refusing requests on a connection that does not read its answers");
        }
        return unread_refusal(is_grpc(req.headers()), unread);
    }
    let in_flight = peer.begin();
    let response = next.run(req).await;
    response.map(|inner| {
        Body::new(Tracked {
            inner,
            peer,
            _in_flight: in_flight,
        })
    })
}
