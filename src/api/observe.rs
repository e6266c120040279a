//! The one place requests are counted for `/metrics`: a layer around every path, gRPC and REST.
//! It reads the outcome from the response itself: `grpc-status` for gRPC (a unary error is sent
//! in the headers), the error code the REST error body carries ([`ErrorCode`]) for REST.
//! Method labels come from fixed sets (the gRPC methods of the served descriptors, the REST
//! routes), so no client can make the label space grow. A refused request is also logged (at
//! info, with its code, message and caller), so an operator can see who was told no and why.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prost::Message;
use tonic::Code;

use super::rest::{ErrorCode, ErrorMessage};
use crate::metrics::{Metrics, Refusal, Transport};

/// Label for paths no route owns.
const UNKNOWN: &str = "unknown";

pub struct Observer {
    metrics: Arc<Metrics>,
    grpc_methods: HashSet<&'static str>,
    /// When each method's RESOURCE_EXHAUSTED refusal was last logged, and how many were not
    /// since: a caller hammering a limit gets one line a second, not one per request.
    exhausted_log:
        std::sync::Mutex<std::collections::HashMap<&'static str, (std::time::Instant, u64)>>,
}

/// The REST route a request matched, left in the response for [`count`].
#[derive(Debug, Clone, Copy)]
struct RestRoute(&'static str);

pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// `/package.Service/Method` for every method of the given encoded descriptor sets.
fn methods_of(sets: &[&[u8]]) -> HashSet<&'static str> {
    let mut out = HashSet::new();
    for set in sets {
        let Ok(fds) = prost_types::FileDescriptorSet::decode(*set) else {
            continue;
        };
        for file in fds.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                for method in service.method {
                    let path = format!(
                        "/{package}.{}/{}",
                        service.name.as_deref().unwrap_or_default(),
                        method.name.unwrap_or_default()
                    );
                    // Leaked once at start-up: a fixed, small set of label values.
                    out.insert(&*Box::leak(path.into_boxed_str()));
                }
            }
        }
    }
    out
}

impl Observer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            grpc_methods: methods_of(&[
                crate::proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ]),
            exhausted_log: Default::default(),
        }
    }

    /// Whether a refusal of `method` with `code` is logged now, and how many like it were not
    /// (RESOURCE_EXHAUSTED: at most once a second per method; every other code, always).
    fn log_now(&self, method: &'static str, code: Code) -> Option<u64> {
        if code != Code::ResourceExhausted {
            return Some(0);
        }
        let mut seen = self.exhausted_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let entry = seen.entry(method).or_insert((now, 0));
        if entry.1 > 0 && now.duration_since(entry.0) < std::time::Duration::from_secs(1) {
            entry.1 += 1;
            return None;
        }
        let skipped = entry.1.saturating_sub(1);
        *entry = (now, 1);
        Some(skipped)
    }
}

/// Counts every request once, after its answer.
pub async fn count(State(obs): State<Arc<Observer>>, req: Request, next: Next) -> Response {
    let grpc = is_grpc(req.headers());
    let grpc_method = grpc.then(|| {
        obs.grpc_methods
            .get(req.uri().path())
            .copied()
            .unwrap_or(UNKNOWN)
    });
    // Described (a formatted string) only if the request is refused.
    let peer = super::caller::peer_of(req.extensions()).cloned();
    let response = next.run(req).await;
    // gRPC puts a unary error's code in the headers; our JSON errors carry theirs.
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
        .or_else(|| response.extensions().get::<ErrorCode>().map(|c| c.0))
        .unwrap_or(if response.status().is_success() {
            Code::Ok
        } else {
            Code::Unknown
        });
    let refusal = refusal(code, grpc, response.status());
    let method = match grpc_method {
        Some(method) => {
            obs.metrics
                .observe_request(Transport::Grpc, method, refusal);
            method
        }
        None => {
            let method = response
                .extensions()
                .get::<RestRoute>()
                .map_or(UNKNOWN, |r| r.0);
            obs.metrics
                .observe_request(Transport::Rest, method, refusal);
            method
        }
    };
    if let Some(refusal) = refusal {
        if let Some(skipped) = obs.log_now(method, code) {
            log_refusal(
                method,
                refusal,
                &response,
                &super::peer::describe(peer.as_ref()),
                skipped,
            );
        }
    }
    response
}

/// What a request that was not OK is counted and logged as: its gRPC code, except a REST
/// method a path does not take (HTTP 405), which is what it is rather than the UNIMPLEMENTED
/// its body carries (as grpc-gateway's does).
fn refusal(code: Code, grpc: bool, status: StatusCode) -> Option<Refusal> {
    match code {
        Code::Ok => None,
        _ if !grpc && status == StatusCode::METHOD_NOT_ALLOWED => Some(Refusal::MethodNotAllowed),
        code => Some(Refusal::Code(code)),
    }
}

/// "refused /portwarden.v1.PortsService/Allocate: RESOURCE_EXHAUSTED: no free port ... (caller
/// uid 1000 pid 4242)". Internal errors are logged where they happen, at error level; a call
/// the client cancelled was not refused.
fn log_refusal(method: &str, refusal: Refusal, response: &Response, peer: &str, skipped: u64) {
    if let Refusal::Code(Code::Internal | Code::Unknown | Code::DataLoss | Code::Cancelled) =
        refusal
    {
        return;
    }
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .or_else(|| {
            response
                .extensions()
                .get::<ErrorMessage>()
                .map(|m| m.0.clone())
        })
        .unwrap_or_default();
    let name = refusal.name();
    let more = match skipped {
        0 => String::new(),
        n => format!("; {n} more like it in the last second not logged"),
    };
    tracing::info!(
        method,
        code = name,
        caller = %peer,
        "refused {method}: {name}: {} (caller {peer}){more}",
        crate::text::printable(&message)
    );
}

/// grpc-message is percent-encoded (gRPC over HTTP/2, "Status-Message").
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The methods of HTTP itself (RFC 9110): a route's label names one of these, or `OTHER`, so an
/// invented method cannot grow the label space.
const HTTP_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// Route labels (`GET /api/ports/allocations/{port}`) for the REST route templates, one per
/// HTTP method and `OTHER {path}` for any other: a method the path does not take (405) is
/// counted under its route too.
#[derive(Clone, Default)]
pub struct RestRoutes(Arc<HashMap<String, RouteLabels>>);

#[derive(Default)]
struct RouteLabels {
    by_method: Vec<(Method, &'static str)>,
    other: &'static str,
}

impl RestRoutes {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        // Leaked once at start-up: ten labels per route template.
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let map = paths
            .into_iter()
            .map(|path| {
                let labels = RouteLabels {
                    by_method: HTTP_METHODS
                        .iter()
                        .map(|m| (m.clone(), leak(format!("{m} {path}"))))
                        .collect(),
                    other: leak(format!("OTHER {path}")),
                };
                (path.to_string(), labels)
            })
            .collect();
        Self(Arc::new(map))
    }

    fn label(&self, method: &Method, path: &str) -> Option<&'static str> {
        let labels = self.0.get(path)?;
        Some(
            labels
                .by_method
                .iter()
                .find(|(m, _)| m == method)
                .map_or(labels.other, |(_, label)| *label),
        )
    }
}

/// Inside the REST router: tags the response with the route the request matched.
pub async fn tag_route(State(routes): State<RestRoutes>, req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| routes.label(req.method(), path.as_str()));
    let mut response = next.run(req).await;
    if let Some(label) = label {
        response.extensions_mut().insert(RestRoute(label));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn grpc_messages_are_decoded_and_bad_escapes_kept() {
        assert_eq!(percent_decode("port 8000%3A taken"), "port 8000: taken");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%\u{e9}"), "%zz%\u{e9}");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }
}
