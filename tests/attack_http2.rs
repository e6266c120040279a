//! HTTP/2 floods from one client, written frame by frame over a real loopback socket: an
//! endless header block (CONTINUATION frames that never end it) and the "rapid reset" pattern
//! (open a stream, cancel it at once, thousands of times). Each connection is cut with GOAWAY
//! long before the flood ends, and the daemon goes on serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestDaemon;
use portwarden_client::proto::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK literal header field without indexing (RFC 7541 6.2.2), name by static-table index
/// (`index` < 15) or, for 0, given.
fn literal(index: u8, name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![index];
    if index == 0 {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

/// A gRPC health check's request headers.
fn request_headers() -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    block.extend(literal(4, "", "/grpc.health.v1.Health/Check"));
    block.extend(literal(1, "", "localhost"));
    block.extend(literal(0, "content-type", "application/grpc"));
    block.extend(literal(0, "te", "trailers"));
    block
}

/// What the daemon did to the connection while a flood was written into it.
struct Outcome {
    /// A GOAWAY frame arrived.
    goaway: bool,
    /// The flood was cut (GOAWAY, end of stream or a reset) before all of it was written.
    cut_after_bytes: Option<usize>,
}

/// Writes `preamble`, then `flood` frame groups (at most `max_groups`, for at most 20 s) while a
/// reader watches for GOAWAY or the end of the connection.
fn flood(
    addr: SocketAddr,
    preamble: &[u8],
    max_groups: usize,
    group: impl Fn(usize) -> Vec<u8>,
) -> Outcome {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    // A small send buffer, so "written" is close to what the daemon was made to read.
    socket2::SockRef::from(&conn)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    let mut reader = conn.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(25)))
        .unwrap();
    let ended = Arc::new(AtomicBool::new(false));
    let reading = {
        let ended = ended.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            let mut goaway = false;
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                // Walk the frames received so far.
                let mut at = 0;
                while buf.len() >= at + 9 {
                    let len = (usize::from(buf[at]) << 16)
                        | (usize::from(buf[at + 1]) << 8)
                        | usize::from(buf[at + 2]);
                    if buf.len() < at + 9 + len {
                        break;
                    }
                    goaway |= buf[at + 3] == GOAWAY;
                    at += 9 + len;
                }
                buf.drain(..at);
                if goaway {
                    break;
                }
            }
            ended.store(true, Ordering::SeqCst);
            goaway
        })
    };
    conn.write_all(PREFACE).unwrap();
    conn.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    conn.write_all(preamble).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut written = 0usize;
    let mut cut_after_bytes = None;
    for i in 0..max_groups {
        if ended.load(Ordering::SeqCst) {
            cut_after_bytes = Some(written);
            break;
        }
        let bytes = group(i);
        if conn.write_all(&bytes).is_err() {
            cut_after_bytes = Some(written);
            break;
        }
        written += bytes.len();
        assert!(
            Instant::now() < deadline,
            "the flood ran 20 s without being cut"
        );
    }
    if cut_after_bytes.is_none() {
        // Everything was written: give the daemon a moment to answer it.
        std::thread::sleep(Duration::from_secs(2));
        if ended.load(Ordering::SeqCst) {
            cut_after_bytes = Some(written);
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let goaway = reading.join().unwrap();
    Outcome {
        goaway,
        cut_after_bytes,
    }
}

async fn still_serves(d: &TestDaemon) {
    let mut c = d.tcp().await;
    let got = c
        .allocate(AllocateRequest {
            service: "after-flood".into(),
            ..Default::default()
        })
        .await
        .expect("the daemon serves others after the flood")
        .into_inner();
    let port = got.allocation.unwrap().port;
    c.release(ReleaseRequest {
        port,
        lease_token: got.lease_token,
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_block_that_never_ends_is_cut() {
    let d = TestDaemon::start("47300-47310", Duration::ZERO).await;
    let addr = d.addr;
    // A header block of 64 MiB at most: 4,096 CONTINUATION frames of 16 KiB of small headers.
    let mut payload = Vec::new();
    while payload.len() + 7 <= 16 * 1024 {
        payload.extend(literal(0, "x-a", "v"));
    }
    let out = tokio::task::spawn_blocking(move || {
        let opening = frame(HEADERS, 0, 1, &request_headers());
        flood(addr, &opening, 4096, |_| {
            frame(CONTINUATION, 0, 1, &payload)
        })
    })
    .await
    .unwrap();
    let cut = out
        .cut_after_bytes
        .expect("the endless header block is cut");
    assert!(
        cut < 8 << 20,
        "cut after {cut} bytes of one header block; the limit is 16 KiB"
    );
    still_serves(&d).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_resets_are_cut() {
    let d = TestDaemon::start("47311-47320", Duration::ZERO).await;
    let addr = d.addr;
    let headers = request_headers();
    // 20,000 streams opened and cancelled at once, 100 per write.
    let out = tokio::task::spawn_blocking(move || {
        flood(addr, &[], 200, |i| {
            let mut bytes = Vec::new();
            for j in 0..100u32 {
                let stream = 1 + 2 * (i as u32 * 100 + j);
                bytes.extend(frame(HEADERS, END_HEADERS, stream, &headers));
                bytes.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
            }
            bytes
        })
    })
    .await
    .unwrap();
    assert!(
        out.cut_after_bytes.is_some() && out.goaway,
        "20,000 opened-and-cancelled streams end the connection with GOAWAY"
    );
    still_serves(&d).await;
    d.stop().await;
}
