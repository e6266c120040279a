//! What the benchmarks share: a child process killed on drop, waiting for a socket file, a free
//! loopback address, a daemon to measure, the Python environment `./scripts/test` makes, and
//! latency statistics.
#![allow(dead_code)] // each benchmark uses part of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 20 s) for `path` to exist.
pub fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `portwarden serve ARGS` with its state and Unix socket (`pw.sock`) in `dir`, quiet, once its
/// socket is there and it has settled: the daemon and the socket's path.
pub fn serve(dir: &Path, args: &[&str]) -> (Guard, PathBuf) {
    let sock = dir.join("pw.sock");
    let daemon = Guard(
        Command::new(env!("CARGO_BIN_EXE_portwarden"))
            .arg("serve")
            .args(args)
            .arg("--state")
            .arg(dir.join("state.db"))
            .arg("--unix-socket")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start portwarden"),
    );
    wait_for(&sock);
    std::thread::sleep(Duration::from_millis(300));
    (daemon, sock)
}

/// A loopback address nothing listens on right now.
pub fn free_tcp_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// The Python interpreter (`PORTWARDEN_BENCH_PYTHON`, else `.venv`) and portpicker's
/// `portserver.py` in `.venv`; exits with a hint when `.venv` was not made.
pub fn python_and_portserver() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("PORTWARDEN_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or(root.join(".venv/bin/python"));
    let portserver = root.join(".venv/bin/portserver.py");
    if !portserver.exists() {
        eprintln!(
            "portserver not found at {}: run ./scripts/test once (it makes .venv)",
            portserver.display()
        );
        std::process::exit(2);
    }
    (python, portserver)
}

/// Latencies of `n` requests made in `secs`.
pub struct Stats {
    pub n: usize,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn from(lat: Vec<Duration>, total: Duration) -> Self {
        Self::from_secs(
            lat.iter().map(Duration::as_secs_f64).collect(),
            total.as_secs_f64(),
        )
    }

    pub fn from_secs(mut lat: Vec<f64>, secs: f64) -> Self {
        lat.sort_by(f64::total_cmp);
        let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize] * 1e3;
        Self {
            n: lat.len(),
            secs,
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
        }
    }

    pub fn rate(&self) -> f64 {
        self.n as f64 / self.secs
    }

    pub fn mean_us(&self) -> f64 {
        self.secs * 1e6 / self.n as f64
    }
}

/// The run with the median rate.
pub fn median(mut runs: Vec<Stats>) -> Stats {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    runs.swap_remove(runs.len() / 2)
}
