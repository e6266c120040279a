//! Socket census benchmark: portwarden's census and full report against `ss -tan` and
//! `psutil.net_connections("tcp")`, side by side at ~1k, 10k and 25k TCP sockets on loopback.
//!
//! Run: `cargo bench --bench census` (needs psutil in .venv, $PORTWARDEN_BENCH_PYTHON or python3; raises
//! RLIMIT_NOFILE; creates only loopback sockets, bounded by the largest size; everything it
//! opened is closed at the end, its TIME_WAIT sockets expire within 60 s).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/population.rs"]
mod population;

use population::{raise_nofile, total_sockets, Population};
use portwarden::network::census::take_census_from;
use portwarden::network::{run_report, CensusRequest, CensusSource, NetworkConfig};

const SIZES: [u64; 5] = [1_000, 5_000, 10_000, 17_500, 25_000];
/// Median wall time of `runs` calls.
fn median(runs: usize, mut call: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ss_tan() {
    let status = Command::new("ss")
        .arg("-tan")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(status, Ok(status) if status.success()) {
        eprintln!("ss -tan failed: {status:?}");
    }
}

const PSUTIL_SCRIPT: &str = r#"
import sys, time
import psutil
runs = int(sys.argv[1])
times = []
count = 0
for _ in range(runs):
    started = time.perf_counter()
    count = len(psutil.net_connections("tcp"))
    times.append(time.perf_counter() - started)
times.sort()
print(f"{times[len(times) // 2] * 1000:.3f} {count}")
"#;

/// Median of psutil.net_connections("tcp") timed inside Python, and its socket count.
fn psutil(runs: usize) -> Option<(Duration, u64)> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let python = std::env::var("PORTWARDEN_BENCH_PYTHON").unwrap_or_else(|_| {
        if std::path::Path::new(venv).exists() {
            venv.to_string()
        } else {
            "python3".to_string()
        }
    });
    let output = Command::new(python)
        .args(["-c", PSUTIL_SCRIPT, &runs.to_string()])
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "psutil unavailable: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let millis: f64 = fields.next()?.parse().ok()?;
    let count: u64 = fields.next()?.parse().ok()?;
    Some((Duration::from_secs_f64(millis / 1000.0), count))
}

/// Lines of `ss -tanH` (one per socket), for the count cross-check.
fn ss_count() -> u64 {
    Command::new("ss")
        .arg("-tanH")
        .output()
        .map_or(0, |output| {
            output
                .stdout
                .split(|&byte| byte == b'\n')
                .filter(|line| !line.is_empty())
                .count() as u64
        })
}

/// Waits (up to 65 s) for TIME_WAIT sockets left by an earlier run to expire.
fn wait_for_quiet_table(below: u64) {
    let deadline = Instant::now() + Duration::from_secs(65);
    while total_sockets() >= below && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() -> std::io::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` probes harness=false targets
    }
    raise_nofile(65_536);
    let cfg = NetworkConfig::default();
    eprintln!("waiting for leftover TIME_WAIT sockets to expire...");
    wait_for_quiet_table(SIZES[0] / 2);
    let mut population = Population::new()?;
    let report_port = population.addresses[0].port();
    println!(
        "| sockets (census / ss / psutil) | census (netlink) ms | census (/proc) ms | full report ms | ss -tan ms | psutil ms | report / ss | psutil / report | census ns per socket |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for target in SIZES {
        let reached = population.grow_to(target)?;
        // Warm up caches and the listen-overflow baseline.
        let _ = run_report(&cfg, Some(report_port));
        ss_tan();
        let census = median(31, || {
            let _ = take_census_from(CensusSource::Netlink, CensusRequest::FULL);
        });
        let proc_census = median(5, || {
            let _ = take_census_from(CensusSource::Proc, CensusRequest::FULL);
        });
        let report = median(21, || {
            let _ = run_report(&cfg, Some(report_port));
        });
        let ss = median(21, ss_tan);
        let psutil = psutil(3);
        let counted = total_sockets();
        let ss_counted = ss_count();
        let (psutil_ms, psutil_ratio, psutil_count) = match psutil {
            Some((time, count)) => (
                format!("{:.2}", ms(time)),
                format!("{:.1}x", ms(time) / ms(report)),
                count.to_string(),
            ),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "| {counted} / {ss_counted} / {psutil_count} | {:.2} | {:.2} | {:.2} | {:.2} | {psutil_ms} | {:.2}x | {psutil_ratio} | {:.0} |",
            ms(census),
            ms(proc_census),
            ms(report),
            ms(ss),
            ms(report) / ms(ss),
            census.as_nanos() as f64 / counted.max(1) as f64,
        );
        eprintln!(
            "  (grew to {reached} sockets; established pairs held: {})",
            population.pairs.len()
        );
    }
    drop(population);
    Ok(())
}
