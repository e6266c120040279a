//! What a web browser may not do. The daemon listens on loopback, which every page can reach,
//! so:
//! - **Host** (every REST path, reads included): a page that points its own DNS name at
//!   127.0.0.1 (DNS rebinding) becomes same-origin with the daemon and could read every
//!   allocation, event and metric; its requests carry its own name as `Host`. Over plaintext
//!   TCP the Host must be `localhost`, a loopback address or the address the connection
//!   arrived on (421 otherwise). Over TLS a rebound name fails the browser's certificate check,
//!   and no page reaches the Unix socket: any Host is accepted there. gRPC clients are not
//!   pages (a browser speaks gRPC to nobody: HTTP/2 without TLS, trailers), so gRPC calls keep
//!   whatever `:authority` their client sends.
//! - **Writes** (POST, DELETE, ...) with a foreign `Origin` or a cross-site `Sec-Fetch-Site`
//!   get 403. Programs (curl, the CLI, gRPC clients) send neither. A same-origin `Origin`
//!   passes only when the `Host` is a loopback name too. (POST bodies must be JSON, 415
//!   otherwise, which no cross-site form can send without a CORS preflight that the daemon
//!   never grants.)
//! - gRPC method paths accept only gRPC: HTTP/2 with `Content-Type: application/grpc*`.
//!   Anything else (a `text/plain` form POST, curl over HTTP/1.1) gets a 4xx JSON error instead
//!   of running the method.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::caller::{transport_of, Transport};
use super::observe::is_grpc;
use super::rest::ApiError;

/// Why a browser request from another site is refused, if it is one.
pub fn cross_site(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("?");
        if !matches!(site, "same-origin" | "none") {
            return Some(format!("Sec-Fetch-Site: {site}"));
        }
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("?");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_origin = origin
        .strip_prefix("http://")
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host));
    if same_origin && is_loopback_host(host) {
        None
    } else {
        Some(format!("Origin: {origin}"))
    }
}

/// The name or address of a `Host` value, without its port (`[::1]:7070` -> `::1`).
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The Host rule (see the module documentation): the refused `Host` and why, if it is refused.
/// A request with no Host at all is no browser's.
pub fn foreign_host(host: Option<&str>, transport: Transport) -> Option<String> {
    let Transport::Tcp(local) = transport else {
        return None;
    };
    let host = host?;
    let arrived_on = |ip: std::net::IpAddr| host_name(host).parse() == Ok(ip);
    if is_loopback_host(host) || local.is_some_and(arrived_on) {
        return None;
    }
    let address = local.map_or_else(String::new, |ip| {
        format!(" or the address it connected to ({ip})")
    });
    Some(format!(
        "Host '{host}' is not a name of this daemon: over TCP a request names it localhost, a \
         loopback address (127.0.0.1, [::1]){address}, which a web page pointing its own DNS \
         name at this machine cannot do; the Unix socket accepts any Host"
    ))
}

/// The `Host` of a request: the header (HTTP/1.1), else the URI's authority (HTTP/2).
fn host_of(req: &Request) -> Option<&str> {
    match req.headers().get(header::HOST) {
        Some(h) => Some(h.to_str().unwrap_or("?")),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

fn refuse_cross_site(why: String) -> Response {
    ApiError::new(tonic::Status::permission_denied(format!(
        "cross-site request refused ({why}): a web page may not change ports on this machine; \
         call portwarden from a program (curl, the portwarden CLI, a client library)"
    )))
    .into_response()
}

/// Inside the REST router: a Host that is not the daemon's is refused (421), and so are
/// writes from another site (403).
pub async fn rest_requests(req: Request, next: Next) -> Response {
    if let Some(why) = foreign_host(host_of(&req), transport_of(req.extensions())) {
        return ApiError::new(tonic::Status::permission_denied(why))
            .with_http(StatusCode::MISDIRECTED_REQUEST)
            .into_response();
    }
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write {
        if let Some(why) = cross_site(req.headers()) {
            return refuse_cross_site(why);
        }
    }
    next.run(req).await
}

/// Around the gRPC services: only gRPC runs a gRPC method.
pub async fn grpc_only(req: Request, next: Next) -> Response {
    if let Some(why) = cross_site(req.headers()) {
        return refuse_cross_site(why);
    }
    let path = req.uri().path().to_string();
    if !is_grpc(req.headers()) {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        return ApiError::invalid(
            "Content-Type",
            format!(
                "{path} is a gRPC method: call it with a gRPC client (Content-Type: \
                 application/grpc, HTTP/2), not Content-Type: {content_type}; the REST paths \
                 are under /api/ports (see /api/openapi.json)"
            ),
        )
        .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .into_response();
    }
    if req.version() < Version::HTTP_2 {
        return ApiError::invalid(
            "version",
            format!(
                "{path} is a gRPC method: gRPC needs HTTP/2, not {:?}",
                req.version()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn programs_and_same_origin_loopback_pages_pass() {
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:7070")])), None);
        for (origin, host) in [
            ("http://127.0.0.1:7070", "127.0.0.1:7070"),
            ("http://localhost:7070", "localhost:7070"),
            ("http://[::1]:7070", "[::1]:7070"),
            ("http://localhost", "localhost"),
        ] {
            let h = headers(&[("origin", origin), ("host", host)]);
            assert_eq!(cross_site(&h), None, "{origin}");
        }
        let h = headers(&[("sec-fetch-site", "same-origin"), ("host", "localhost")]);
        assert_eq!(cross_site(&h), None);
    }

    #[test]
    fn the_host_rule_accepts_loopback_names_and_the_arrival_address_over_plain_tcp() {
        let local: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let tcp = Transport::Tcp(Some(local));
        for host in [
            "localhost",
            "LOCALHOST:7070",
            "127.0.0.1",
            "127.9.9.9:7070",
            "[::1]:7070",
            "10.0.0.5:7070",
            "10.0.0.5",
        ] {
            assert_eq!(foreign_host(Some(host), tcp), None, "{host}");
        }
        assert_eq!(foreign_host(None, tcp), None, "no Host: not a browser");
        for host in [
            "rebind.evil.example",
            "rebind.evil.example:7070",
            "localhost.evil.example",
            "10.0.0.6:7070",
            "127.0.0.1.evil.example",
            "",
        ] {
            let why = foreign_host(Some(host), tcp).expect(host);
            assert!(why.contains("Host") && why.contains("10.0.0.5"), "{why}");
        }
        assert!(foreign_host(Some("10.0.0.5"), Transport::Tcp(None)).is_some());
        for open in [Transport::Unix, Transport::Tls] {
            assert_eq!(foreign_host(Some("rebind.evil.example"), open), None);
        }
    }

    #[test]
    fn other_sites_rebound_names_and_opaque_origins_are_refused() {
        for (origin, host) in [
            ("https://evil.example", "127.0.0.1:7070"),
            ("http://localhost:3000", "localhost:7070"),
            // DNS rebinding: the page's own name now points at 127.0.0.1.
            ("http://evil.example:7070", "evil.example:7070"),
            ("null", "localhost:7070"),
            ("https://localhost:7070", "localhost:7070"),
        ] {
            let h = headers(&[("origin", origin), ("host", host)]);
            assert!(cross_site(&h).is_some(), "{origin} -> {host}");
        }
        for site in ["cross-site", "same-site"] {
            let h = headers(&[("sec-fetch-site", site)]);
            assert!(cross_site(&h).is_some(), "{site}");
        }
    }
}
