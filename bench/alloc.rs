//! Allocation benchmark: portwarden vs Google's portpicker `portserver`, side by side, in one run.
//!
//! Run: `cargo bench --bench alloc` (needs `.venv` with portpicker: `./scripts/test` makes it, or
//! `python3 -m venv .venv && .venv/bin/pip install portpicker`). Both servers run as separate
//! processes on this machine and talk over loopback/Unix sockets only; every loop is bounded.
//! Prints a markdown table (copied into BENCHMARKS.md).

#[path = "support/common.rs"]
mod common;
use common::{free_tcp_addr, median, python_and_portserver, wait_for, Guard, Stats};

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{AllocateRequest, ReleaseRequest};
use portwarden_client::{connect, Target};
use tonic::transport::Channel;

const SEQ: usize = 2000;
/// Sequential phases run this many times, interleaved, and the median run is reported: on a
/// shared 2-core VM one run can be off by 50 % either way.
const REPS: usize = 5;
const CLIENTS: usize = 32;
const PER_CLIENT: usize = 150;

/// A `Vm*`/`Rss*` line of /proc/PID/status, in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix(':'))
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

/// One portserver request: connect, send our pid, read the port.
fn portserver_request(sock: &Path) -> u16 {
    let mut s = UnixStream::connect(sock).expect("connect portserver");
    writeln!(s, "{}", std::process::id()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("portserver answered {out:?}"))
}

fn portserver_sequential(sock: &Path, n: usize) -> Stats {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        portserver_request(sock);
        lat.push(t.elapsed());
    }
    Stats::from(lat, start.elapsed())
}

fn portserver_concurrent(sock: &Path) -> Stats {
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let sock = sock.to_path_buf();
            std::thread::spawn(move || {
                (0..PER_CLIENT)
                    .map(|_| {
                        let t = Instant::now();
                        portserver_request(&sock);
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    Stats::from(lat, start.elapsed())
}

async fn pw_sequential(c: &mut PortsServiceClient<Channel>, n: usize, release: bool) -> Stats {
    let mut lat = Vec::with_capacity(n);
    let mut held = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let r = c
            .allocate(AllocateRequest {
                service: format!("bench-{}", i % 64),
                ..Default::default()
            })
            .await
            .expect("allocate")
            .into_inner();
        let port = r.allocation.map(|a| a.port).unwrap_or_default();
        if release {
            c.release(ReleaseRequest {
                port,
                lease_token: r.lease_token,
            })
            .await
            .expect("release");
        } else {
            held.push((port, r.lease_token));
        }
        lat.push(t.elapsed());
    }
    let stats = Stats::from(lat, start.elapsed());
    for (port, lease_token) in held {
        c.release(ReleaseRequest { port, lease_token })
            .await
            .expect("release");
    }
    stats
}

async fn pw_concurrent(target: &Target) -> Stats {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for id in 0..CLIENTS {
        let mut c = PortsServiceClient::new(connect(target).await.expect("connect"));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(PER_CLIENT);
            for _ in 0..PER_CLIENT {
                let t = Instant::now();
                let r = c
                    .allocate(AllocateRequest {
                        service: format!("conc-{id}"),
                        ..Default::default()
                    })
                    .await
                    .expect("allocate")
                    .into_inner();
                lat.push(t.elapsed());
                let port = r.allocation.map(|a| a.port).unwrap_or_default();
                c.release(ReleaseRequest {
                    port,
                    lease_token: r.lease_token,
                })
                .await
                .expect("release");
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    Stats::from(lat, start.elapsed())
}

fn row(name: &str, s: &Stats, anchor: &Stats) -> String {
    format!(
        "| {name} | {} | {:.0}/s | {:.3} | {:.3} | {:.1}x |",
        s.n,
        s.rate(),
        s.p50_ms,
        s.p99_ms,
        s.rate() / anchor.rate()
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes harness=false targets
    }
    let (python, portserver) = python_and_portserver();
    let dir = tempfile::tempdir().expect("tempdir");
    let ps_sock = dir.path().join("portserver.sock");
    let ps = Guard(
        Command::new(&python)
            .arg(&portserver)
            .arg("--portserver_static_pool=15000-29999")
            .arg(format!("--portserver_address={}", ps_sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start portserver"),
    );
    let pw_sock = dir.path().join("pw.sock");
    let tcp_addr = free_tcp_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args([
            "serve",
            "--listen",
            &tcp_addr,
            "--range",
            "10000-14999",
            "--quarantine",
            "0s",
            "--netns-lock",
            &format!("@portwarden-bench-{}", std::process::id()),
        ])
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .arg("--unix-socket")
        .arg(&pw_sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start portwarden");
    let pw = Guard(child);
    wait_for(&ps_sock);
    wait_for(&pw_sock);
    std::thread::sleep(Duration::from_millis(300));

    // One request at a time is best driven from a single-threaded runtime (no cross-thread
    // wake-ups in the client); 32 concurrent clients from a 2-worker runtime.
    let seq_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let unix = Target::Unix(pw_sock.clone());
    let tcp = Target::Tcp(format!("http://{tcp_addr}"));
    let client = |t: &Target| {
        seq_rt.block_on(async { PortsServiceClient::new(connect(t).await.expect("connect")) })
    };
    let (mut c, mut ct) = (client(&unix), client(&tcp));
    // Warm-up of both, not measured.
    portserver_sequential(&ps_sock, 100);
    seq_rt.block_on(pw_sequential(&mut c, 200, true));
    seq_rt.block_on(pw_sequential(&mut ct, 200, true));

    // Portserver's pool (15,000 ports) is consumed by our live pid: its total stays under that
    // (100 + 5 x 2,000 + 4,800).
    let (mut ps_runs, mut unix_runs, mut cycle_runs, mut tcp_runs) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..REPS {
        ps_runs.push(portserver_sequential(&ps_sock, SEQ));
        unix_runs.push(seq_rt.block_on(pw_sequential(&mut c, SEQ, false)));
        cycle_runs.push(seq_rt.block_on(pw_sequential(&mut c, SEQ, true)));
        tcp_runs.push(seq_rt.block_on(pw_sequential(&mut ct, SEQ, false)));
    }
    let (ps_seq, pw_seq_alloc) = (median(ps_runs), median(unix_runs));
    let (pw_seq_cycle, pw_seq_tcp) = (median(cycle_runs), median(tcp_runs));
    let ps_conc = portserver_concurrent(&ps_sock);
    let pw_conc = rt.block_on(pw_concurrent(&unix));
    let pw_conc_tcp = rt.block_on(pw_concurrent(&tcp));
    let rt = seq_rt;

    // RSS with 101 allocations held.
    let held: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..101 {
            let r = c
                .allocate(AllocateRequest {
                    service: format!("held-{i}"),
                    ..Default::default()
                })
                .await
                .expect("allocate");
            v.push(r.into_inner());
        }
        v
    });
    std::thread::sleep(Duration::from_millis(200));
    let pw_rss = rss_kb(pw.0.id());
    let ps_rss = rss_kb(ps.0.id());
    // RSS counts the executable's code pages mapped from the page cache (clean, shared, and
    // read ahead in large chunks); the anonymous part is the memory the process made.
    let (pw_anon, ps_anon) = (
        status_kb(pw.0.id(), "RssAnon"),
        status_kb(ps.0.id(), "RssAnon"),
    );
    let pw_file = status_kb(pw.0.id(), "RssFile");
    drop(held);

    println!("| workload | allocations | rate | p50 ms | p99 ms | vs portserver |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        row(
            "portserver, sequential (Unix socket, 1 connection per request)",
            &ps_seq,
            &ps_seq
        )
    );
    println!(
        "{}",
        row(
            "portwarden, sequential Allocate (gRPC, Unix socket)",
            &pw_seq_alloc,
            &ps_seq
        )
    );
    println!(
        "{}",
        row(
            "portwarden, sequential Allocate (gRPC, TCP)",
            &pw_seq_tcp,
            &ps_seq
        )
    );
    println!(
        "{}",
        row(
            "portwarden, sequential Allocate+Release round trip (Unix)",
            &pw_seq_cycle,
            &ps_seq
        )
    );
    println!(
        "{}",
        row("portserver, 32 concurrent clients", &ps_conc, &ps_conc)
    );
    println!(
        "{}",
        row(
            "portwarden, 32 clients, Allocate+Release (Unix)",
            &pw_conc,
            &ps_conc
        )
    );
    println!(
        "{}",
        row(
            "portwarden, 32 clients, Allocate+Release (TCP)",
            &pw_conc_tcp,
            &ps_conc
        )
    );
    println!();
    println!(
        "RSS with 101 allocations held: portwarden {pw_rss} kB (anonymous {pw_anon} kB, file-backed {pw_file} kB), portserver {ps_rss} kB (anonymous {ps_anon} kB)"
    );
    println!("(rates count allocations; the Allocate+Release rows also do a Release per allocation, not counted;");
    println!(" sequential rows: the median of {REPS} interleaved runs of {SEQ})");
}
