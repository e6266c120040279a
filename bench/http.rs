//! The REST gateway under load, side by side with gRPC in one run, against the release daemon.
//!
//! Run: `cargo bench --bench http` (needs `wrk`: `apt-get install wrk`). Everything talks over
//! loopback; every phase is bounded in time or count. Prints a markdown table (copied into
//! BENCHMARKS.md).
//!
//! - `GET /api/ports/status` and `GET /api/ports/network/health` (from the snapshot) with wrk:
//!   1 thread, 32 keep-alive connections, 10 s each.
//! - One allocate+release round trip at a time: REST (POST then DELETE with `X-Lease-Token` on
//!   one keep-alive HTTP/1.1 connection) vs gRPC (Allocate then Release on one HTTP/2
//!   connection, tonic client on a single-threaded runtime), both over TCP; 5 interleaved runs
//!   of 2,000, the median run reported.

#[path = "support/common.rs"]
mod common;
use common::{free_tcp_addr, median, serve, Stats};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{AllocateRequest, ReleaseRequest};
use portwarden_client::{connect, Target};

const WRK_SECONDS: u32 = 10;
const WRK_CONNECTIONS: u32 = 32;
const ROUND_TRIPS: usize = 2000;
const REPS: usize = 5;

struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

/// wrk's latency figures ("512.00us", "1.20ms", "1.01s") in ms.
fn to_ms(v: &str) -> f64 {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * factor
}

fn wrk(url: &str) -> WrkResult {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{WRK_CONNECTIONS}"),
            &format!("-d{WRK_SECONDS}s"),
            "--latency",
            url,
        ])
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
            .unwrap_or_default()
    };
    WrkResult {
        rps: field("Requests/sec:").parse().unwrap_or(0.0),
        p50_ms: to_ms(&field("50%")),
        p99_ms: to_ms(&field("99%")),
        errors: [field("Non-2xx or 3xx responses:"), field("Socket errors:")]
            .into_iter()
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A keep-alive HTTP/1.1 client, as a program calling the REST API would use one.
struct Http1 {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Http1 {
    fn connect(addr: &str) -> Self {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Self {
            reader: BufReader::new(s),
            host: addr.to_string(),
        }
    }

    fn call(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let s = self.reader.get_mut();
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        s.write_all(&raw).expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().expect("length");
                }
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("body");
        (status, body)
    }
}

fn rest_round_trips(c: &mut Http1, n: usize) -> Stats {
    let body = br#"{"service":"bench-rest"}"#;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let (status, reply) = c.call(
            "POST",
            "/api/ports/allocations",
            "Content-Type: application/json\r\n",
            body,
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&reply));
        let v: serde_json::Value = serde_json::from_slice(&reply).expect("json");
        let port = v["allocation"]["port"].as_u64().expect("port");
        let token = v["lease_token"].as_str().expect("token");
        let (status, reply) = c.call(
            "DELETE",
            &format!("/api/ports/allocations/{port}"),
            &format!("X-Lease-Token: {token}\r\n"),
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        lat.push(t.elapsed());
    }
    Stats::from(lat, start.elapsed())
}

async fn grpc_round_trips(
    c: &mut PortsServiceClient<tonic::transport::Channel>,
    n: usize,
) -> Stats {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let r = c
            .allocate(AllocateRequest {
                service: "bench-grpc".into(),
                ..Default::default()
            })
            .await
            .expect("allocate")
            .into_inner();
        c.release(ReleaseRequest {
            port: r.allocation.expect("allocation").port,
            lease_token: r.lease_token,
        })
        .await
        .expect("release");
        lat.push(t.elapsed());
    }
    Stats::from(lat, start.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes harness=false targets
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk not found: apt-get install wrk");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_tcp_addr();
    let lock = format!("@portwarden-bench-{}", std::process::id());
    let (_daemon, _sock) = serve(
        dir.path(),
        &[
            "--listen",
            &addr,
            "--range",
            "10000-10100",
            "--quarantine",
            "0s",
            "--netns-lock",
            &lock,
        ],
    );

    let base = format!("http://{addr}");
    let status = wrk(&format!("{base}/api/ports/status"));
    let health = wrk(&format!("{base}/api/ports/network/health"));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut grpc = rt.block_on(async {
        PortsServiceClient::new(connect(&Target::Tcp(base.clone())).await.expect("connect"))
    });
    let mut rest = Http1::connect(&addr);
    // Warm-up, not measured.
    rest_round_trips(&mut rest, 200);
    rt.block_on(grpc_round_trips(&mut grpc, 200));
    let (mut rest_runs, mut grpc_runs) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        rest_runs.push(rest_round_trips(&mut rest, ROUND_TRIPS));
        grpc_runs.push(rt.block_on(grpc_round_trips(&mut grpc, ROUND_TRIPS)));
    }
    let (rest_rt, grpc_rt) = (median(rest_runs), median(grpc_runs));

    println!("| workload | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    for (name, r) in [
        ("GET /api/ports/status (wrk, 32 connections)", &status),
        (
            "GET /api/ports/network/health (wrk, 32 connections)",
            &health,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.3} | {:.3} | {} |",
            r.rps,
            r.p50_ms,
            r.p99_ms,
            if r.errors.is_empty() { "0" } else { &r.errors }
        );
    }
    println!();
    println!("| allocate+release, one at a time (TCP) | round trips/s | mean µs | p50 ms | p99 ms | cost vs gRPC |");
    println!("|---|---|---|---|---|---|");
    for (name, s) in [("gRPC", &grpc_rt), ("REST", &rest_rt)] {
        println!(
            "| {name} | {:.0} | {:.1} | {:.3} | {:.3} | {:.2}x |",
            s.rate(),
            s.mean_us(),
            s.p50_ms,
            s.p99_ms,
            s.mean_us() / grpc_rt.mean_us()
        );
    }
}
