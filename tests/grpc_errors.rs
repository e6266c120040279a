//! What a broken gRPC request gets: a body that is not protobuf is the client's error
//! (INVALID_ARGUMENT, not INTERNAL), a request over 64 KiB is RESOURCE_EXHAUSTED for every
//! service (health and reflection included), and nothing of it reaches the state.

mod common;

use bytes::Bytes;
use common::{list, ChildDaemon};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One gRPC call over a raw HTTP/2 connection with `message` as the request's only message;
/// its `grpc-status` (from the headers or the trailers) and `grpc-message`.
async fn call(addr: std::net::SocketAddr, path: &str, message: &[u8]) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let req = hyper::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(frame)))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let mut status = parts.headers.get("grpc-status").cloned();
    let mut message = parts.headers.get("grpc-message").cloned();
    if status.is_none() {
        let collected = body.collect().await.unwrap();
        if let Some(t) = collected.trailers() {
            status = t.get("grpc-status").cloned();
            message = t.get("grpc-message").cloned();
        }
    }
    let text = |v: Option<hyper::header::HeaderValue>| {
        v.map(|v| percent_decode(v.to_str().unwrap_or_default()))
            .unwrap_or_default()
    };
    (text(status), text(message))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_are_the_clients_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "30400-30401", &[]);
    // A field tag with no value: not protobuf.
    let (code, msg) = call(
        d.addr,
        "/portwarden.v1.PortsService/Allocate",
        &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    )
    .await;
    assert_eq!(code, "3", "INVALID_ARGUMENT: {msg}");
    assert!(msg.contains("not a valid message"), "{msg}");

    let big = vec![0x0au8; 100 * 1024];
    for path in [
        "/portwarden.v1.PortsService/Allocate",
        "/grpc.health.v1.Health/Check",
    ] {
        let (code, msg) = call(d.addr, path, &big).await;
        assert_eq!(code, "8", "{path}: RESOURCE_EXHAUSTED: {msg}");
        assert!(msg.contains("64 KiB"), "{path}: {msg}");
    }
    // Reflection streams drop an oversized message unread and end the stream (the library's
    // way); what matters is that it is not decoded and not blamed on the daemon.
    for path in [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let (code, msg) = call(d.addr, path, &big).await;
        assert!(code == "8" || code == "0", "{path}: {code} {msg}");
    }
    let mut c = d.tcp().await;
    assert!(list(&mut c).await.is_empty(), "nothing was allocated");
}
