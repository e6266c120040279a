//! Codes that say whose fault a failure is. tonic answers a request body that is not valid
//! protobuf with INTERNAL (as if the daemon were broken) and one over the size limit with
//! OUT_OF_RANGE; both are the client's input, so they become INVALID_ARGUMENT and
//! RESOURCE_EXHAUSTED (the code gRPC itself uses for an oversized message), with messages a
//! person can act on. The status may come in the headers (a unary call refused at once) or in
//! the trailers (a streaming call): both are looked at.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Code;

use crate::config::MAX_MESSAGE_BYTES;

/// Rewrites `grpc-status`/`grpc-message` in `headers` when they blame the daemon for the
/// client's input.
fn fix(headers: &mut HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    let (code, message) = match status.code() {
        Code::Internal
            if status
                .message()
                .starts_with("failed to decode Protobuf message") =>
        {
            (
                Code::InvalidArgument,
                format!(
                    "the request body is not a valid message for this method: {}",
                    status.message()
                ),
            )
        }
        Code::OutOfRange
            if status
                .message()
                .contains("decoded message length too large") =>
        {
            (
                Code::ResourceExhausted,
                format!(
                    "the request is larger than the daemon accepts ({} KiB): {}",
                    MAX_MESSAGE_BYTES / 1024,
                    status.message()
                ),
            )
        }
        _ => return,
    };
    let (parts, ()) = tonic::Status::new(code, message)
        .into_http::<()>()
        .into_parts();
    headers.insert(
        "grpc-status",
        HeaderValue::from_str(&(code as i32).to_string()).unwrap_or(HeaderValue::from_static("2")),
    );
    if let Some(m) = parts.headers.get("grpc-message") {
        headers.insert("grpc-message", m.clone());
    }
    headers.remove("grpc-status-details-bin");
}

/// A response body whose trailers get the same treatment.
struct FixTrailers(Body);

impl HttpBody for FixTrailers {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                fix(&mut trailers);
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

pub async fn client_errors(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    fix(response.headers_mut());
    response.map(|body| Body::new(FixTrailers(body)))
}
