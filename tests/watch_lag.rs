//! A watcher that stops reading is ended and told where to resume, and resuming there misses
//! nothing: a Watch over a raw HTTP/2 client with the smallest windows reads nothing while
//! events pile up, then reads what it was sent, and watches again from the sequence it was
//! given.

mod common;

use std::time::Duration;

use bytes::{Buf, Bytes};
use common::ChildDaemon;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portwarden_client::proto::*;
use prost::Message;

/// The WatchResponses in a gRPC response body's data, in order.
fn messages(mut data: Bytes) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    while data.remaining() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if data.remaining() < 5 + len {
            break;
        }
        data.advance(5);
        out.push(WatchResponse::decode(data.split_to(len)).expect("a WatchResponse"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_told_where_to_resume_and_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(
        dir.path(),
        "32500-32509",
        &["--quarantine", "0s", "--watchdog-interval", "60s"],
    );
    let tcp = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(format!(
        "http://{}/portwarden.v1.WatchdogService/Watch",
        d.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
    .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert!(resp.headers().get("grpc-status").is_none());

    // Far more than the 64 KiB window holds, while the watcher reads nothing (~4 KB events:
    // the client's HTTP/2 refuses a flood of small frames it is not reading).
    let mut c = d.unix().await;
    for i in 0..60 {
        let r = c
            .allocate(AllocateRequest {
                service: format!("lag{i}"),
                labels: (0..16)
                    .map(|k| (format!("k{k}"), "v".repeat(250)))
                    .collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        c.release(ReleaseRequest {
            port: r.allocation.unwrap().port,
            lease_token: r.lease_token,
        })
        .await
        .unwrap();
    }
    let newest = portwarden_client::proto::watchdog_service_client::WatchdogServiceClient::new(
        common::connect_tcp(d.addr).await,
    )
    .status(WatchdogStatusRequest::default())
    .await
    .unwrap()
    .into_inner()
    .last_sequence;
    tokio::time::sleep(portwarden::events::LAG_TIMEOUT + Duration::from_millis(700)).await;

    // Now it reads: what was sent, then the end, naming where to resume.
    let collected = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("the stream ends")
        .expect("a clean end");
    let trailers = collected.trailers().cloned().expect("trailers");
    let got = messages(collected.to_bytes());
    let last = got
        .iter()
        .filter_map(|m| m.event.as_ref())
        .map(|e| e.sequence)
        .max()
        .expect("some events arrived before the window filled");
    assert!(last < newest, "not everything fit: {last} of {newest}");
    assert_eq!(trailers.get("grpc-status").unwrap(), "8");
    let status = tonic::Status::from_header_map(&trailers).expect("a status");
    assert!(
        status.message().contains(&format!("since_sequence {last}")),
        "{}",
        status.message()
    );
    use tonic_types::StatusExt;
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(info.reason, "WATCHER_BEHIND");
    assert_eq!(info.metadata.get("since_sequence"), Some(&last.to_string()));
    d.wait_for_log("a watcher fell behind and was ended")
        .unwrap();

    // Resuming there gives the very next event and every later one.
    let channel = common::connect_tcp(d.addr).await;
    let mut stream = common::watch(
        channel,
        WatchRequest {
            since_sequence: Some(last),
            ..Default::default()
        },
    )
    .await;
    let rest = common::events_until(&mut stream, Duration::from_secs(10), |seen| {
        seen.last().is_some_and(|e| e.sequence >= newest)
    })
    .await;
    let sequences: Vec<u64> = rest.iter().map(|e| e.sequence).collect();
    let want: Vec<u64> = (last + 1..=newest).collect();
    assert_eq!(sequences, want, "no gap, no duplicate");
}
