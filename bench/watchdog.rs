//! Watchdog benchmarks: the cost of one pass on a busy host, event fan-out to 1,000 watchers,
//! idle CPU at the default interval, and allocation throughput against a baseline build (when one
//! is given).
//!
//! Run: `cargo bench --bench watchdog` (as root for the 25k-socket population; loopback only;
//! every loop is bounded). Sections: `cargo bench --bench watchdog -- pass fanout idle baseline`
//! (default: all). `PORTWARDEN_BENCH_IDLE_SECS` shortens the idle measurement (default 65 s);
//! `PORTWARDEN_BASELINE_BIN` names a `portwarden` binary to compare allocation throughput with
//! (`bench/event-log-off` builds this commit without the event log's durable write; a build of
//! an older commit works too).

#[path = "support/common.rs"]
mod common;
use common::{free_tcp_addr, Guard};

#[path = "support/population.rs"]
mod population;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use population::{raise_nofile, Population};
use portwarden::network::{NetworkConfig, NetworkGate};
use portwarden::ports::{AllocateRequest, Allocator, AllocatorConfig, Caller, RangeSet};
use portwarden::watchdog::{Watchdog, WatchdogConfig};
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::{self, EventKind, WatchRequest};
use portwarden_client::{connect, Target};

const SOCKETS: u64 = 25_000;
const ALLOCATIONS: u16 = 101;
const PASSES: usize = 15;
const WATCHERS: usize = 1000;
const STREAMS_PER_CONNECTION: usize = 50;
const FANOUT_EVENTS: usize = 200;

/// CPU time (user + system) of this process so far.
fn own_cpu() -> Duration {
    // SAFETY: getrusage writes into a valid struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time (user + system) of another process, from /proc/PID/stat.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 1000 / hz)
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn pick(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
}

fn supports_netns_lock(binary: &Path) -> bool {
    Command::new(binary)
        .args(["serve", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--netns-lock"))
}

/// A `portwarden serve` process from `binary` with its state in `dir`.
fn daemon(binary: &Path, dir: &Path, range: &str, extra: &[&str]) -> (Guard, Target) {
    let sock = dir.join("pw.sock");
    let mut cmd = Command::new(binary);
    cmd.args(["serve", "--listen", &free_tcp_addr(), "--range", range])
        .args(["--quarantine", "0s"]);
    // A build from before the namespace claim has no such flag (and claims nothing).
    if supports_netns_lock(binary) {
        cmd.args([
            "--netns-lock",
            &format!("@portwarden-bench-{}-{range}", std::process::id()),
        ]);
    }
    let child = cmd
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--unix-socket")
        .arg(&sock)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start portwarden");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the daemon never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    (Guard(child), Target::Unix(sock))
}

/// One pass over 101 listening allocations with ~25k sockets on the host, in process; the
/// anchor is `ss -tanp` (what a hand-written health script runs to see who listens).
fn pass_cost() {
    raise_nofile(2 * SOCKETS + 10_000);
    let mut population = Population::new().expect("listeners");
    let total = population.grow_to(SOCKETS).expect("population");
    let dir = tempfile::tempdir().expect("tempdir");
    let range = "30000-30100";
    let cfg = AllocatorConfig {
        ranges: RangeSet::new(vec![range.parse().unwrap()]).unwrap(),
        test_pool: None,
        quarantine: Duration::ZERO,
        state_path: dir.path().join("state.db"),
        quotas: Default::default(),
        accept_state_loss: false,
    };
    let gate = Arc::new(NetworkGate::new(NetworkConfig::default()));
    let (allocator, _) = Allocator::open(cfg).expect("state");
    let allocator = Arc::new(allocator.with_gate(gate.clone()));
    let me = std::process::id() as i32;
    let mut servers = Vec::new();
    for i in 0..ALLOCATIONS {
        let a = allocator
            .allocate(
                AllocateRequest {
                    service: format!("svc{i}"),
                    pid: Some(me),
                    ..Default::default()
                },
                &Caller {
                    uid: Some(0),
                    pid: None,
                },
            )
            .expect("allocate")
            .allocation;
        servers.push(TcpListener::bind(("0.0.0.0", a.port)).expect("listen"));
    }
    let watchdog = Watchdog::new(WatchdogConfig::default(), allocator.clone(), gate);
    let measure = |w: &Watchdog| {
        let (cpu, wall) = (own_cpu(), Instant::now());
        w.pass().expect("pass");
        (own_cpu() - cpu, wall.elapsed())
    };
    let (first_cpu, first_wall) = measure(&watchdog);
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..PASSES {
        let (c, w) = measure(&watchdog);
        cpu.push(c);
        wall.push(w);
    }
    cpu.sort();
    wall.sort();
    let mut ss = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = Command::new("ss")
            .arg("-tanp")
            .stdout(Stdio::null())
            .status();
        assert!(out.is_ok_and(|s| s.success()), "ss -tanp");
        ss.push(t.elapsed());
    }
    ss.sort();
    let active = allocator
        .list(None)
        .iter()
        .filter(|a| a.health == portwarden::ports::Health::Active)
        .count();
    println!("## Watchdog pass ({total} TCP sockets on the host, {ALLOCATIONS} allocations, {active} active)\n");
    println!("| measure | CPU ms | wall ms | vs `ss -tanp` wall |");
    println!("|---|---:|---:|---:|");
    let ss_ms = pick(&ss, 0.5);
    println!(
        "| first pass (reads the owner's descriptor table) | {:.1} | {:.1} | {:.2}x |",
        first_cpu.as_secs_f64() * 1e3,
        first_wall.as_secs_f64() * 1e3,
        first_wall.as_secs_f64() * 1e3 / ss_ms
    );
    println!(
        "| later passes, median of {PASSES} | {:.1} | {:.1} | {:.2}x |",
        pick(&cpu, 0.5),
        pick(&wall, 0.5),
        pick(&wall, 0.5) / ss_ms
    );
    println!(
        "| later passes, slowest of {PASSES} | {:.1} | {:.1} | |",
        pick(&cpu, 1.0),
        pick(&wall, 1.0)
    );
    println!("| `ss -tanp`, median of 5 | | {ss_ms:.1} | 1.00x |\n");
    drop(servers);
    drop(population);
}

/// Detection (the Allocate that makes the event) to delivery at every one of 1,000 watchers.
fn fanout() {
    raise_nofile(65_536);
    let dir = tempfile::tempdir().expect("tempdir");
    let (pw, target) = daemon(
        Path::new(env!("CARGO_BIN_EXE_portwarden")),
        dir.path(),
        "31000-31300",
        &[],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rss_before = rss_mb(pw.0.id());
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (latencies, rss_with, watchers) = rt.block_on(async {
        let mut channels = Vec::new();
        for _ in 0..WATCHERS.div_ceil(STREAMS_PER_CONNECTION) {
            channels.push(connect(&target).await.expect("connect"));
        }
        let mut tasks = Vec::new();
        for i in 0..WATCHERS {
            let mut stream =
                WatchdogServiceClient::new(channels[i / STREAMS_PER_CONNECTION].clone())
                    .watch(WatchRequest {
                        kinds: vec![EventKind::Allocated as i32],
                        ..Default::default()
                    })
                    .await
                    .expect("watch")
                    .into_inner();
            let sent = sent.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(FANOUT_EVENTS);
                while lat.len() < FANOUT_EVENTS {
                    let Ok(Ok(Some(m))) =
                        tokio::time::timeout(Duration::from_secs(30), stream.message()).await
                    else {
                        break;
                    };
                    let at = Instant::now();
                    if let Some(e) = m.event {
                        if let Some(t0) = sent.lock().unwrap().get(&e.service) {
                            lat.push(at.duration_since(*t0));
                        }
                    }
                }
                lat
            }));
        }
        let mut status = WatchdogServiceClient::new(channels[0].clone());
        let watchers = status
            .status(proto::WatchdogStatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .subscribers;
        let rss_with = rss_mb(pw.0.id());
        let mut ports = PortsServiceClient::new(connect(&target).await.expect("connect"));
        for i in 0..FANOUT_EVENTS {
            let service = format!("fan{i}");
            sent.lock().unwrap().insert(service.clone(), Instant::now());
            ports
                .allocate(proto::AllocateRequest {
                    service,
                    ..Default::default()
                })
                .await
                .expect("allocate");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("watcher"));
        }
        (all, rss_with, watchers)
    });
    let mut lat = latencies;
    lat.sort();
    println!("## Event fan-out ({watchers} watchers on {} connections, {FANOUT_EVENTS} allocations 5 ms apart)\n", WATCHERS.div_ceil(STREAMS_PER_CONNECTION));
    println!("| deliveries | p50 ms | p99 ms | max ms | daemon RSS idle MB | daemon RSS with watchers MB |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} of {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
        lat.len(),
        WATCHERS * FANOUT_EVENTS,
        pick(&lat, 0.5),
        pick(&lat, 0.99),
        pick(&lat, 1.0),
        rss_before,
        rss_with
    );
}

/// CPU of an idle daemon at the default 30 s interval, holding 101 allocations.
fn idle() {
    let secs: u64 = std::env::var("PORTWARDEN_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(65);
    let dir = tempfile::tempdir().expect("tempdir");
    let (pw, target) = daemon(
        Path::new(env!("CARGO_BIN_EXE_portwarden")),
        dir.path(),
        "32000-32100",
        &[],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut ports = PortsServiceClient::new(connect(&target).await.expect("connect"));
        for i in 0..ALLOCATIONS {
            ports
                .allocate(proto::AllocateRequest {
                    service: format!("idle{i}"),
                    pid: Some(std::process::id() as i32),
                    ..Default::default()
                })
                .await
                .expect("allocate");
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let (cpu0, t0) = (cpu_of(pw.0.id()), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu, wall) = (cpu_of(pw.0.id()) - cpu0, t0.elapsed());
    println!(
        "## Idle daemon (default 30 s pass, 1 s reaper, {ALLOCATIONS} process-owned allocations)\n"
    );
    println!("| measured over | CPU used | share of one core |");
    println!("|---:|---:|---:|");
    println!(
        "| {:.0} s | {} ms | {:.3} % |\n",
        wall.as_secs_f64(),
        cpu.as_millis(),
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
    );
}

async fn sequential(c: &mut PortsServiceClient<tonic::transport::Channel>, n: usize) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        let r = c
            .allocate(proto::AllocateRequest {
                service: format!("b{i}"),
                ..Default::default()
            })
            .await
            .expect("allocate")
            .into_inner();
        c.release(proto::ReleaseRequest {
            port: r.allocation.expect("allocation").port,
            lease_token: r.lease_token,
        })
        .await
        .expect("release");
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Allocate+Release throughput of this build and of `PORTWARDEN_BASELINE_BIN`, interleaved.
fn baseline() {
    let Some(base) = std::env::var_os("PORTWARDEN_BASELINE_BIN").map(PathBuf::from) else {
        println!("(no PORTWARDEN_BASELINE_BIN: the before/after comparison is skipped)\n");
        return;
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_now, now_target) = daemon(
        Path::new(env!("CARGO_BIN_EXE_portwarden")),
        d1.path(),
        "33000-33999",
        &[],
    );
    let (_before, before_target) = daemon(&base, d2.path(), "34000-34999", &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut now_runs, mut before_runs) = (Vec::new(), Vec::new());
    rt.block_on(async {
        let mut a = PortsServiceClient::new(connect(&now_target).await.unwrap());
        let mut b = PortsServiceClient::new(connect(&before_target).await.unwrap());
        sequential(&mut a, 200).await;
        sequential(&mut b, 200).await;
        for _ in 0..5 {
            before_runs.push(sequential(&mut b, 2000).await);
            now_runs.push(sequential(&mut a, 2000).await);
        }
    });
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (now, before) = (med(now_runs), med(before_runs));
    println!("## Allocation throughput, this build vs a baseline build\n");
    println!("| build | Allocate+Release round trips/s (Unix socket, sequential, median of 5 x 2,000) | vs baseline |");
    println!("|---|---:|---:|");
    println!("| baseline ({}) | {before:.0} | 1.00x |", base.display());
    println!("| this build | {now:.0} | {:.2}x |\n", now / before);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    if want("pass") {
        pass_cost();
    }
    if want("fanout") {
        fanout();
    }
    if want("baseline") {
        baseline();
    }
    if want("idle") {
        idle();
    }
}
