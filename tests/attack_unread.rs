//! A client that asks and never reads: HTTP/2 lets it start many requests on one connection
//! and leave every answer unread, which the daemon would have to hold. Past 1 MiB of unread
//! answers on a connection, its new requests are refused, so what one client can make the daemon
//! hold stays bounded (connections per caller x 1 MiB, plus one answer each).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{allocate, rss_kb, ChildDaemon};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portwarden_client::proto::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_reads_its_answers_is_refused_more() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29960-30010", &["--quarantine", "0s"]);
    let mut c = d.tcp().await;
    // Fifty allocations with big labels: each List answer is ~200 KB.
    for i in 0..50 {
        let labels = (0..16)
            .map(|k| (format!("k{k}"), "v".repeat(250)))
            .collect();
        allocate(
            &mut c,
            AllocateRequest {
                service: format!("big{i}"),
                labels,
                ..Default::default()
            },
        )
        .await;
    }
    let before = rss_kb(d.child.id());

    // A raw HTTP/2 client with the smallest windows that never reads a body.
    let tcp = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        // An empty ListRequest: a gRPC frame of 0 bytes.
        let req =
            hyper::Request::post(format!("http://{}/portwarden.v1.PortsService/List", d.addr))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
                .unwrap();
        send.ready().await.unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
            .await
            .expect("answered")
            .unwrap();
        if resp.headers().get("grpc-status").map(|v| v.as_bytes()) == Some(b"8") {
            refused += 1;
        }
        held.push(resp); // never read
    }
    assert!(
        refused > 0,
        "requests past 1 MiB of unread answers are refused"
    );
    assert!(
        refused >= 40,
        "most of the 60 (~12 MB of answers) were refused: {refused}"
    );
    let grew = rss_kb(d.child.id()).saturating_sub(before);
    assert!(grew < 32 * 1024, "the daemon grew by {grew} kB");
    d.wait_for_log("does not read its answers").unwrap();

    // Other connections are unaffected.
    assert_eq!(common::list(&mut c).await.len(), 50);
    drop(held);
}
