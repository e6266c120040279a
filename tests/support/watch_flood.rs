//! Many Watch streams on a few HTTP/2 connections, over a raw hyper client with the protocol's
//! smallest windows (65,535 bytes per stream and per connection), whose bodies are never read:
//! what a local user can make the daemon hold. Run inside the attacker's own process (see
//! `attacker.rs`, `Attacker::run_role`), so the daemon sees the attacker's uid.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The streams opened: those the daemon accepted are held open, unread, until dropped.
pub struct Flood {
    pub accepted: usize,
    pub refused: usize,
    /// One refusal's grpc-message, when there was one.
    pub refusal: Option<String>,
    held: Vec<hyper::Response<Incoming>>,
    _senders: Vec<hyper::client::conn::http2::SendRequest<Full<Bytes>>>,
}

/// An empty WatchRequest (every event, live) as one gRPC message.
const EMPTY_WATCH: &[u8] = &[0, 0, 0, 0, 0];

/// Opens `conns` connections to `addr` with `streams` Watch streams each, all at once, with
/// `window` bytes of HTTP/2 window per stream and per connection.
pub async fn open(addr: SocketAddr, conns: usize, streams: usize, window: u32) -> Flood {
    let mut flood = Flood {
        accepted: 0,
        refused: 0,
        refusal: None,
        held: Vec::new(),
        _senders: Vec::new(),
    };
    let connections: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(open_one(addr, streams, window)))
        .collect();
    for c in connections {
        let Ok(Some((send, answers))) = c.await else {
            flood.refused += streams;
            continue;
        };
        for answer in answers {
            match answer {
                Some(resp) if resp.headers().get("grpc-status").is_none() => {
                    flood.accepted += 1;
                    flood.held.push(resp);
                }
                Some(resp) => {
                    flood.refused += 1;
                    if flood.refusal.is_none() {
                        flood.refusal = resp
                            .headers()
                            .get("grpc-message")
                            .and_then(|m| m.to_str().ok())
                            .map(percent_decoded);
                    }
                }
                None => flood.refused += 1,
            }
        }
        flood._senders.push(send);
    }
    flood
}

type Answers = (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    Vec<Option<hyper::Response<Incoming>>>,
);

/// One connection and its streams' answers (None: no answer within 10 s).
async fn open_one(addr: SocketAddr, streams: usize, window: u32) -> Option<Answers> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(conn);
    let pending: Vec<_> = (0..streams)
        .map(|_| {
            let req =
                hyper::Request::post(format!("http://{addr}/portwarden.v1.WatchdogService/Watch"))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(Full::new(Bytes::from_static(EMPTY_WATCH)))
                    .unwrap();
            let mut send = send.clone();
            tokio::spawn(async move {
                send.ready().await.ok()?;
                tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
                    .await
                    .ok()?
                    .ok()
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(streams);
    for p in pending {
        answers.push(p.await.ok().flatten());
    }
    Some((send, answers))
}

/// A grpc-message as sent (percent-encoded), decoded.
fn percent_decoded(m: &str) -> String {
    let b = m.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| m.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
