//! Drop-in benchmark, side by side in one run:
//!
//! 1. The same client, portpicker's `pick_unused_port()` with `PORTSERVER_ADDRESS`, against
//!    portpicker's own `portserver.py`, against portwarden's portserver endpoint, and against the
//!    protocol's floor on this host: `bench/floor/portserver_floor.c`, a C server that answers a
//!    constant port and does nothing else (built here with the system `cc`). One process picking
//!    sequentially, then 32 processes picking at once.
//! 2. One-shot wall times (start a process, get a port, exit): `python -c 'import portpicker;
//!    portpicker.pick_unused_port()'` against portserver and against portwarden, the same with
//!    `import portwarden`, and `portwarden run -- true` (allocate, bind, listen, start `true`,
//!    wait, release).
//!
//! Run: `cargo bench --bench dropin` (needs `.venv` with portpicker and the Python client:
//! `./scripts/test` makes it). Both servers are separate processes on this machine; every loop
//! is bounded. Prints markdown tables (copied into BENCHMARKS.md).

#[path = "support/common.rs"]
mod common;
use common::{median, python_and_portserver, serve, wait_for, Guard, Stats};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sequential picks per run, runs per server (interleaved; the median run is reported).
const SEQ: usize = 1000;
const SEQ_REPS: usize = 5;
/// Concurrent client processes, picks each, runs per server.
const PROCS: usize = 32;
const PER_PROC: usize = 100;
const CONC_REPS: usize = 3;
/// One-shot runs per command (interleaved).
const ONE_SHOT_RUNS: usize = 40;

const PORTSERVER_POOL: (u16, u16) = (15000, 29999);
/// portwarden's test pool, where its portserver endpoint draws from.
const PORTWARDEN_RANGE: (u16, u16) = (10000, 14999);

/// One process, `n` picks in a row; prints the total seconds, then each pick's seconds.
const SEQUENTIAL: &str = r#"
import sys, time, portpicker
n, lo, hi = map(int, sys.argv[1:4])
lat = []
t0 = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    p = portpicker.pick_unused_port()
    lat.append(time.perf_counter() - t)
    assert lo <= p <= hi, f"port {p} did not come from the server"
total = time.perf_counter() - t0
print(total, *lat)
"#;

/// `procs` forked processes wait for one start signal, then each makes `per` picks; prints the
/// wall seconds from the signal to the last pick, then every pick's seconds.
const CONCURRENT: &str = r#"
import os, sys, time, portpicker
procs, per, lo, hi = map(int, sys.argv[1:5])
go_r, go_w = os.pipe()
res_r, res_w = os.pipe()
kids = []
for _ in range(procs):
    pid = os.fork()
    if pid == 0:
        os.close(go_w); os.close(res_r)
        os.read(go_r, 1)
        lat = []
        for _ in range(per):
            t = time.perf_counter()
            p = portpicker.pick_unused_port()
            lat.append(time.perf_counter() - t)
            if not lo <= p <= hi:
                os._exit(3)
        os.write(res_w, (" ".join("%.9f" % x for x in lat) + "\n").encode())
        os._exit(0)
    kids.append(pid)
os.close(go_r); os.close(res_w)
t0 = time.perf_counter()
os.write(go_w, b"x" * procs)
with os.fdopen(res_r, "rb") as f:
    data = f.read()
total = time.perf_counter() - t0
for k in kids:
    assert os.waitpid(k, 0)[1] == 0, "a picker got a port from outside the server's range"
lats = data.split()
assert len(lats) == procs * per
print(total, *[x.decode() for x in lats])
"#;

fn python_run(python: &Path, script: &str, args: &[String], portserver: &Path) -> Stats {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PORTSERVER_ADDRESS", portserver)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the python client");
    assert!(out.status.success(), "python client failed");
    // The script prints the total seconds, then each pick's latency in seconds.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut nums = text
        .split_whitespace()
        .map(|x| x.parse::<f64>().expect("a number"));
    let secs = nums.next().expect("total");
    Stats::from_secs(nums.collect(), secs)
}

/// Waits until the daemon holds no allocation (the last run's processes exited and were swept).
fn wait_reclaimed(portwarden: &Path, socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(portwarden)
            .args(["list", "--json"])
            .env("PORTWARDEN_ADDR", format!("unix:{}", socket.display()))
            .output()
            .expect("portwarden list");
        if String::from_utf8_lossy(&out.stdout).trim() == "[]" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "allocations not reclaimed within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Median wall time of each command over interleaved runs, in ms.
fn one_shots(commands: &[(&str, Command)]) -> Vec<f64> {
    let mut cmds: Vec<Command> = Vec::new();
    for (_, c) in commands {
        let mut fresh = Command::new(c.get_program());
        fresh.args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => fresh.env(k, v),
                None => fresh.env_remove(k),
            };
        }
        fresh.stdout(Stdio::null()).stderr(Stdio::null());
        cmds.push(fresh);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
    for _ in 0..ONE_SHOT_RUNS {
        for (i, c) in cmds.iter_mut().enumerate() {
            let t = Instant::now();
            let status = c.status().expect("run");
            times[i].push(t.elapsed().as_secs_f64() * 1e3);
            assert!(status.success(), "{:?} failed", commands[i].0);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect()
}

/// The protocol's floor: `bench/floor/portserver_floor.c`, compiled with the system `cc` into
/// `dir`, answering `port` to every request at `path`.
fn floor_server(dir: &Path, path: &Path, port: u16) -> Guard {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/floor/portserver_floor.c");
    let binary = dir.join("portserver_floor");
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("cc (the system C compiler) builds the floor server");
    assert!(built.success(), "cc failed on {}", source.display());
    Guard(
        Command::new(&binary)
            .arg(path)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the floor server"),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes harness=false targets
    }
    let (python, portserver_py) = python_and_portserver();
    let portwarden = PathBuf::from(env!("CARGO_BIN_EXE_portwarden"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ps_sock = dir.path().join("portserver.sock");
    let _ps = Guard(
        Command::new(&python)
            .arg(&portserver_py)
            .arg(format!(
                "--portserver_static_pool={}-{}",
                PORTSERVER_POOL.0, PORTSERVER_POOL.1
            ))
            .arg(format!("--portserver_address={}", ps_sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start portserver"),
    );
    let pw_ps = dir.path().join("pw-portserver.sock");
    let test_range = format!("{}-{}", PORTWARDEN_RANGE.0, PORTWARDEN_RANGE.1);
    let (_pw, pw_sock) = serve(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--quarantine",
            "0s",
            "--netns-lock",
            "@portwarden-bench-dropin",
            "--range",
            "9000-9100",
            "--test-range",
            &test_range,
            "--portserver-socket",
            pw_ps.to_str().expect("a UTF-8 temp path"),
        ],
    );
    let floor_sock = dir.path().join("floor.sock");
    let _floor = floor_server(dir.path(), &floor_sock, PORTWARDEN_RANGE.0);
    let floor_range = (PORTWARDEN_RANGE.0, PORTWARDEN_RANGE.0);
    wait_for(&floor_sock);
    wait_for(&ps_sock);
    wait_for(&pw_ps);
    std::thread::sleep(Duration::from_millis(300));

    let range_args = |n: &[usize], (lo, hi): (u16, u16)| {
        n.iter()
            .map(ToString::to_string)
            .chain([lo.to_string(), hi.to_string()])
            .collect::<Vec<_>>()
    };
    // Warm-up of both, not measured.
    python_run(
        &python,
        SEQUENTIAL,
        &range_args(&[100], PORTSERVER_POOL),
        &ps_sock,
    );
    python_run(
        &python,
        SEQUENTIAL,
        &range_args(&[100], PORTWARDEN_RANGE),
        &pw_ps,
    );

    // Each round: the floor, portserver, then portwarden once its previous round was swept.
    let round = |script: &str, counts: &[usize]| {
        let floor = python_run(
            &python,
            script,
            &range_args(counts, floor_range),
            &floor_sock,
        );
        let ps = python_run(
            &python,
            script,
            &range_args(counts, PORTSERVER_POOL),
            &ps_sock,
        );
        wait_reclaimed(&portwarden, &pw_sock);
        let pw = python_run(
            &python,
            script,
            &range_args(counts, PORTWARDEN_RANGE),
            &pw_ps,
        );
        (floor, ps, pw)
    };
    let medians = |runs: Vec<(Stats, Stats, Stats)>| {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for (x, y, z) in runs {
            a.push(x);
            b.push(y);
            c.push(z);
        }
        (median(a), median(b), median(c))
    };
    let (floor_seq, ps_seq, pw_seq) =
        medians((0..SEQ_REPS).map(|_| round(SEQUENTIAL, &[SEQ])).collect());
    let (floor_conc, ps_conc, pw_conc) = medians(
        (0..CONC_REPS)
            .map(|_| round(CONCURRENT, &[PROCS, PER_PROC]))
            .collect(),
    );

    println!("| workload (portpicker 1.6 client, PORTSERVER_ADDRESS) | picks | rate | p50 ms | p99 ms | vs portserver.py | of the floor |");
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, s: &Stats, anchor: &Stats, floor: &Stats| {
        println!(
            "| {name} | {} | {:.0}/s | {:.3} | {:.3} | {:.1}x | {:.2} |",
            s.n,
            s.rate(),
            s.p50_ms,
            s.p99_ms,
            s.rate() / anchor.rate(),
            s.rate() / floor.rate()
        )
    };
    let floor_name = "the floor: a C server answering a constant port, nothing else";
    row(
        &format!("({floor_name}), 1 process, sequential"),
        &floor_seq,
        &ps_seq,
        &floor_seq,
    );
    row(
        "portserver.py, 1 process, sequential",
        &ps_seq,
        &ps_seq,
        &floor_seq,
    );
    row(
        "portwarden, 1 process, sequential",
        &pw_seq,
        &ps_seq,
        &floor_seq,
    );
    row(
        &format!("({floor_name}), {PROCS} processes"),
        &floor_conc,
        &ps_conc,
        &floor_conc,
    );
    row(
        &format!("portserver.py, {PROCS} processes at once"),
        &ps_conc,
        &ps_conc,
        &floor_conc,
    );
    row(
        &format!("portwarden, {PROCS} processes at once"),
        &pw_conc,
        &ps_conc,
        &floor_conc,
    );
    println!();

    wait_reclaimed(&portwarden, &pw_sock);
    let pick = "import portpicker; portpicker.pick_unused_port()";
    let pick_pw = "import portwarden; portwarden.pick_unused_port()";
    let py = |code: &str, server: &Path| {
        let mut c = Command::new(&python);
        c.args(["-c", code]).env("PORTSERVER_ADDRESS", server);
        c
    };
    let mut run = Command::new(&portwarden);
    run.args(["run", "--quiet", "--", "true"])
        .env("PORTWARDEN_ADDR", format!("unix:{}", pw_sock.display()));
    let commands = [
        (
            "python -c 'import portpicker; portpicker.pick_unused_port()' (portserver.py)",
            py(pick, &ps_sock),
        ),
        (
            "python -c 'import portpicker; portpicker.pick_unused_port()' (portwarden)",
            py(pick, &pw_ps),
        ),
        (
            "python -c 'import portwarden; portwarden.pick_unused_port()' (portwarden)",
            py(pick_pw, &pw_ps),
        ),
        (
            "portwarden run -- true (allocate, bind, listen, start, wait, release)",
            run,
        ),
        (
            "python -c 'pass' (interpreter start-up alone)",
            py("pass", &ps_sock),
        ),
    ];
    let medians = one_shots(&commands);
    println!("| one-shot command | median wall ms | vs portpicker + portserver.py |");
    println!("|---|---|---|");
    for ((name, _), ms) in commands.iter().zip(&medians) {
        println!("| {name} | {ms:.1} | {:.2}x |", ms / medians[0]);
    }
    println!();
    println!("(sequential: median of {SEQ_REPS} interleaved runs of {SEQ} picks; concurrent: median of {CONC_REPS} runs of {PROCS} x {PER_PROC}; one-shot: median of {ONE_SHOT_RUNS} interleaved runs)");
}
