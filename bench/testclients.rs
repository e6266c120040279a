//! Test-port clients, side by side in one run, against the release daemon:
//!
//! 1. Python, per call: the pytest plugin's `port_factory()` (one allocation from the test pool
//!    over REST on the Unix socket) and `free_port` (allocate, then release), its fallback without
//!    a daemon (bind(0) for TCP and UDP), a bare socket bound to port 0, and portpicker without
//!    a portserver.
//! 2. Python, per test: a suite of tests each taking `free_port`, the same with a fixture that
//!    binds port 0, and with no fixture; the same allocation over gRPC (`portwarden.Client`); and
//!    what a worker pays to import the plugin (REST) against the gRPC client.
//! 3. Node, per call: portwarden's `getPort()` from the daemon (Unix socket, then loopback TCP),
//!    its fallback without a daemon, get-port's `getPort()` (installed from npm into
//!    target/bench-get-port for this benchmark only), and a bare `net.Server` on port 0.
//!
//! Run: `cargo bench --bench testclients` (needs `.venv` with the plugin and portpicker, which
//! `./scripts/test` makes, and npm). Every loop is bounded; loopback only. Prints markdown
//! tables (copied into BENCHMARKS.md).

#[path = "support/common.rs"]
mod common;
use common::{median, Stats};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Calls per run, runs per way (interleaved; the median run is reported).
const CALLS: usize = 1000;
const REPS: usize = 5;
/// Tests per suite, runs per suite.
const SUITE: usize = 1000;
const SUITE_REPS: usize = 5;
/// Fresh interpreters per import measurement.
const IMPORT_RUNS: usize = 20;
/// The get-port release measured against.
const GET_PORT: &str = "get-port@7.2.0";

const RANGE: (u16, u16) = (9000, 9010);
const TEST_POOL: (u16, u16) = (10000, 14999);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse(stdout: &[u8]) -> Stats {
    let text = String::from_utf8_lossy(stdout);
    let mut nums = text
        .split_whitespace()
        .map(|x| x.parse::<f64>().expect("a number"));
    let secs = nums.next().expect("total");
    Stats::from_secs(nums.collect(), secs)
}

fn run(mut cmd: Command, what: &str) -> Stats {
    let out = cmd.stderr(Stdio::inherit()).output().expect(what);
    assert!(out.status.success(), "{what} failed");
    parse(&out.stdout)
}

/// Waits until the daemon holds nothing (the last run's process exited and was swept).
fn wait_reclaimed(portwarden: &Path, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(portwarden)
            .args(["list", "--json"])
            .env("PORTWARDEN_ADDR", addr)
            .output()
            .expect("portwarden list");
        if String::from_utf8_lossy(&out.stdout).trim() == "[]" {
            return;
        }
        assert!(Instant::now() < deadline, "not reclaimed within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// get-port from npm, in a directory of its own (not a dependency of anything here).
fn install_get_port() -> PathBuf {
    let dir = root().join("target/bench-get-port");
    if !dir.join("node_modules/get-port/package.json").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--no-save", "--no-package-lock", "--no-audit"])
            .args(["--no-fund", "--loglevel=error", "--prefix"])
            .arg(&dir)
            .arg(GET_PORT)
            .status()
            .expect("npm");
        assert!(ok.success(), "npm install {GET_PORT}");
    }
    dir
}

/// clients/node/dist, built when missing.
fn node_dist() -> PathBuf {
    let pkg = root().join("clients/node");
    if !pkg.join("dist/esm/index.js").exists() {
        for args in [&["ci", "--no-audit", "--no-fund"][..], &["run", "build"]] {
            assert!(Command::new("npm")
                .args(args)
                .current_dir(&pkg)
                .status()
                .expect("npm")
                .success());
        }
    }
    pkg.join("dist")
}

/// A pytest suite of `SUITE` tests per file: with free_port, with a bind(0) fixture, with none.
fn write_suite(dir: &Path) {
    std::fs::write(dir.join("pytest.ini"), "[pytest]\n").unwrap();
    std::fs::write(
        dir.join("conftest.py"),
        "import socket, pytest\n\n@pytest.fixture\ndef bind0_port():\n    s = socket.socket()\n    s.bind((\"\", 0))\n    port = s.getsockname()[1]\n    s.close()\n    return port\n",
    )
    .unwrap();
    for (file, arg) in [
        ("test_free_port.py", "free_port"),
        ("test_bind0.py", "bind0_port"),
        ("test_nothing.py", ""),
    ] {
        let body: String = (0..SUITE)
            .map(|i| format!("def test_{i}({arg}):\n    pass\n"))
            .collect();
        std::fs::write(dir.join(file), body).unwrap();
    }
}

fn pytest_wall(python: &Path, suite: &Path, file: &str, addr: &str) -> f64 {
    let t = Instant::now();
    let ok = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p"])
        .args(["pytest_portwarden", file])
        .current_dir(suite)
        .env("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        .env("PORTWARDEN_ADDR", addr)
        .stdout(Stdio::null())
        .status()
        .expect("pytest");
    assert!(ok.success(), "pytest {file}");
    t.elapsed().as_secs_f64()
}

/// Median milliseconds of `bench/testclients/imports.py WHAT` (timed inside the interpreter).
fn import_ms(python: &Path, what: &str) -> f64 {
    let script = root().join("bench/testclients/imports.py");
    let mut t: Vec<f64> = (0..IMPORT_RUNS)
        .map(|_| {
            let out = Command::new(python)
                .arg(&script)
                .arg(what)
                .output()
                .unwrap();
            assert!(out.status.success(), "imports.py {what}");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn row(name: &str, s: &Stats, vs: &[&Stats]) {
    let ratios: Vec<String> = vs
        .iter()
        .map(|a| format!("{:.2}x", s.mean_us() / a.mean_us()))
        .collect();
    println!(
        "| {name} | {} | {:.1} | {:.3} | {:.3} | {} |",
        s.n,
        s.mean_us(),
        s.p50_ms,
        s.p99_ms,
        ratios.join(" | ")
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes harness=false targets
    }
    let python = std::env::var_os("PORTWARDEN_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or(root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} missing: run ./scripts/test once (it makes .venv)",
        python.display()
    );
    let get_port = install_get_port();
    let dist = node_dist();
    let portwarden = PathBuf::from(env!("CARGO_BIN_EXE_portwarden"));
    let dir = tempfile::tempdir().expect("tempdir");
    let tcp = common::free_tcp_addr();
    let (range, test_pool) = (
        format!("{}-{}", RANGE.0, RANGE.1),
        format!("{}-{}", TEST_POOL.0, TEST_POOL.1),
    );
    let (_daemon, sock) = common::serve(
        dir.path(),
        &[
            "--quarantine",
            "0s",
            "--portserver-socket",
            "none",
            "--netns-lock",
            "@portwarden-bench-testclients",
            "--listen",
            &tcp,
            "--range",
            &range,
            "--test-range",
            &test_pool,
        ],
    );
    let unix = format!("unix:{}", sock.display());
    let http = format!("http://{tcp}");
    let absent = format!("unix:{}", dir.path().join("absent.sock").display());
    let script = |name: &str| root().join("bench/testclients").join(name);

    // 1. Python per call.
    let py = |mode: &str, addr: &str| {
        let mut c = Command::new(&python);
        c.arg(script("fixtures.py"))
            .args([mode, &CALLS.to_string()])
            .env("PORTWARDEN_ADDR", addr);
        let s = run(c, mode);
        wait_reclaimed(&portwarden, &unix);
        s
    };
    let py_modes = [
        ("port_factory", unix.as_str()),
        ("free_port", unix.as_str()),
        ("grpc", unix.as_str()),
        ("fallback", absent.as_str()),
        ("bind0", absent.as_str()),
        ("portpicker", absent.as_str()),
    ];
    let mut py_runs: Vec<Vec<Stats>> = py_modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..REPS {
        for (i, (mode, addr)) in py_modes.iter().enumerate() {
            py_runs[i].push(py(mode, addr));
        }
    }
    let py_med: Vec<Stats> = py_runs.into_iter().map(median).collect();

    // 2. Python per test, and a worker's imports.
    let suite = dir.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    write_suite(&suite);
    let files = ["test_free_port.py", "test_bind0.py", "test_nothing.py"];
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); files.len()];
    for _ in 0..SUITE_REPS {
        for (i, f) in files.iter().enumerate() {
            walls[i].push(pytest_wall(&python, &suite, f, &unix));
        }
    }
    let walls: Vec<f64> = walls
        .into_iter()
        .map(|mut w| {
            w.sort_by(f64::total_cmp);
            w[w.len() / 2]
        })
        .collect();
    let imports = [
        ("`pytest_portwarden` (REST over http.client)", "plugin"),
        ("`portwarden.Client` (grpc, protobuf, the stubs)", "grpc"),
    ];
    let import_ms: Vec<f64> = imports.iter().map(|(_, w)| import_ms(&python, w)).collect();

    // 3. Node per call.
    let node = |mode: &str, addr: &str| {
        let mut c = Command::new("node");
        c.arg(script("getport.mjs"))
            .args([mode, &CALLS.to_string()])
            .arg(&dist)
            .arg(&get_port)
            .env("PORTWARDEN_ADDR", addr);
        let s = run(c, mode);
        wait_reclaimed(&portwarden, &unix);
        s
    };
    let node_modes = [
        ("portwarden", unix.as_str()),
        ("portwarden", http.as_str()),
        ("fallback", absent.as_str()),
        ("get-port", absent.as_str()),
        ("bind0", absent.as_str()),
    ];
    let mut node_runs: Vec<Vec<Stats>> = node_modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..REPS {
        for (i, (mode, addr)) in node_modes.iter().enumerate() {
            node_runs[i].push(node(mode, addr));
        }
    }
    let node_med: Vec<Stats> = node_runs.into_iter().map(median).collect();

    println!(
        "| Python, one call | calls | mean µs | p50 ms | p99 ms | vs bind(0) | vs portpicker |"
    );
    println!("|---|---|---|---|---|---|---|");
    let names = [
        "pytest-portwarden `port_factory()` (allocate, test pool, REST, Unix socket)",
        "pytest-portwarden `free_port` (allocate, then release)",
        "the same allocation over gRPC (`portwarden.Client.allocate(pool=\"test\")`)",
        "pytest-portwarden without a daemon (bind(0) TCP, then UDP)",
        "a socket bound to port 0, then closed",
        "portpicker `pick_unused_port()` without a portserver",
    ];
    for (name, s) in names.iter().zip(&py_med) {
        row(name, s, &[&py_med[4], &py_med[5]]);
    }
    println!();
    println!("| pytest, {SUITE} tests | median wall s | per test µs over no fixture |");
    println!("|---|---|---|");
    for (name, w) in [
        "each takes `free_port` (daemon)",
        "each takes a fixture binding port 0",
        "no fixture",
    ]
    .iter()
    .zip(&walls)
    {
        println!(
            "| {name} | {w:.2} | {:.0} |",
            (w - walls[2]) * 1e6 / SUITE as f64
        );
    }
    println!();
    println!("| a worker's import, after `import pytest` | median ms |");
    println!("|---|---|");
    for ((name, _), ms) in imports.iter().zip(&import_ms) {
        println!("| {name} | {ms:.1} |");
    }
    println!();
    println!("| Node, one call | calls | mean µs | p50 ms | p99 ms | vs bind(0) | vs get-port |");
    println!("|---|---|---|---|---|---|---|");
    let names = [
        "portwarden `getPort()` (allocate, test pool, Unix socket)",
        "portwarden `getPort()` (allocate, test pool, loopback TCP)",
        "portwarden `getPort()` without a daemon (bind(0))",
        "get-port 7.2.0 `getPort()`",
        "a `net.Server` on port 0, then closed",
    ];
    for (name, s) in names.iter().zip(&node_med) {
        row(name, s, &[&node_med[4], &node_med[3]]);
    }
    println!();
    println!(
        "(per call: median of {REPS} interleaved runs of {CALLS} calls after 20 unmeasured; suites: median of {SUITE_REPS}; imports: median of {IMPORT_RUNS} fresh interpreters)"
    );
}
