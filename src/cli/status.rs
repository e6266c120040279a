//! `portwarden status`: which daemon answered (version, uptime, listeners, state file), the
//! ranges, one line per allocation, the watchdog and the network, on one screen; `--verbose`
//! gives the full report (a block per allocation, every network check). The exit code follows
//! the network: 1 on a warning, 2 when critical.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tonic::transport::Channel;
use tonic::Status;

use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::{
    self, Allocation, NetworkReport, OverviewRequest, StatusResponse, WatchdogStatusResponse,
};

use super::commands::{print_json, CliError};
use super::exit;
use super::render::{
    allocation_block, allocation_json, allocation_table, p, proto_report, rfc3339,
};
use super::units::human;
use super::StatusArgs;

struct Gathered {
    st: StatusResponse,
    list: Vec<Allocation>,
    watchdog: Result<WatchdogStatusResponse, Status>,
    network: Result<NetworkReport, Status>,
}

pub async fn run(channel: Channel, args: &StatusArgs) -> Result<u8, CliError> {
    // One request: everything below is one answer, taken at one moment.
    let o = WatchdogServiceClient::new(channel)
        .overview(OverviewRequest {})
        .await?
        .into_inner();
    let missing = |what: &str| Status::internal(format!("the daemon's answer has no {what}"));
    let g = Gathered {
        st: o.ports.ok_or_else(|| missing("ports status"))?,
        list: o.allocations,
        watchdog: o.watchdog.ok_or_else(|| missing("watchdog status")),
        network: o.network.ok_or_else(|| {
            Status::new(
                tonic::Code::from(o.network_error_code),
                o.network_error.clone(),
            )
        }),
    };
    if args.json {
        print_json(&to_json(&g));
    } else if args.verbose {
        out!("{}", verbose(&g));
    } else {
        out!("{}", compact(&g));
    }
    Ok(match g.network.as_ref().map(|r| r.status()) {
        Ok(proto::OverallStatus::Warning) => exit::WARNING,
        Ok(proto::OverallStatus::Critical) => exit::CRITICAL,
        _ => exit::OK,
    })
}

fn ranges(list: &[proto::PortRange]) -> String {
    list.iter()
        .map(|r| {
            if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report's overall status as the text output names it.
pub(super) fn network_status(r: &NetworkReport) -> &'static str {
    match r.status() {
        proto::OverallStatus::Healthy => "healthy",
        proto::OverallStatus::Warning => "warning",
        _ => "critical",
    }
}

fn uptime(started: Option<&prost_types::Timestamp>) -> Option<String> {
    let started = started?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(human(Duration::from_secs(
        now.saturating_sub(started.seconds).max(0) as u64,
    )))
}

/// The daemon's identity line(s).
fn daemon_lines(st: &StatusResponse) -> String {
    let Some(d) = &st.daemon else {
        return String::new();
    };
    let mut s = format!("portwarden {} (pid {})", p(&d.version), d.pid);
    if let Some(up) = uptime(d.started_at.as_ref()) {
        s += &format!(", up {up}");
    }
    s += &format!(
        "\n  listening: {}\n  state: {}\n",
        p(&d.listeners.join(", ")),
        p(&d.state_path)
    );
    s
}

fn compact(g: &Gathered) -> String {
    let st = &g.st;
    let mut s = daemon_lines(st);
    s += &format!(
        "ports {}: {} allocated, {} free, {} resting after release, {} unavailable ({} in all)\n",
        ranges(&st.ranges),
        st.allocated,
        st.available,
        st.quarantined,
        st.unavailable,
        st.total
    );
    for w in &st.warnings {
        s += &format!("  ⚠ {}\n", p(w));
    }
    if let Some(t) = &st.test_pool {
        s += &format!(
            "test pool {}: {} allocated, {} free, {} resting, {} unavailable ({} in all)\n",
            ranges(&t.ranges),
            t.allocated,
            t.available,
            t.resting,
            t.unavailable,
            t.total
        );
    }
    s += &match &g.watchdog {
        Ok(w) => {
            let last = rfc3339(w.last_run.as_ref())
                .map(|at| format!("last {at} ({:.1} ms)", w.last_run_duration_ms))
                .unwrap_or_else(|| "no pass yet".into());
            format!(
                "watchdog: {}, a pass every {}; {last}; {} issues, {} reclaimed\n",
                if w.running { "running" } else { "stopped" },
                human(Duration::from_millis(w.interval_ms)),
                w.issues_detected,
                w.reclaimed
            )
        }
        Err(e) => format!("watchdog: {}\n", p(e.message())),
    };
    s += &match &g.network {
        Ok(r) => {
            let mut found: Vec<String> = r.critical_issues.clone();
            found.extend(r.warnings.iter().cloned());
            let list = if found.is_empty() {
                String::new()
            } else {
                format!(": {}", found.join(", "))
            };
            format!(
                "network: {} ({} critical, {} warnings{list})\n",
                network_status(r),
                r.critical_issues.len(),
                r.warnings.len()
            )
        }
        Err(e) => format!("network: {}\n", p(e.message())),
    };
    s.push('\n');
    if g.list.is_empty() {
        s += "no allocations\n";
    } else {
        s += &allocation_table(&g.list);
    }
    s
}

fn verbose(g: &Gathered) -> String {
    let st = &g.st;
    let rule = "=".repeat(70);
    let mut s = format!("{rule}\nPORTWARDEN PORT & NETWORK STATUS\n{rule}\n\n");
    s += &daemon_lines(st);
    s += "\nPORT MANAGER\n------------\n";
    s += &format!("Port Range: {}\n", ranges(&st.ranges));
    s += &format!("Allocated: {} / {} ports\n", st.allocated, st.total);
    s += &format!("Available: {} ports\n", st.available);
    if st.quarantined > 0 {
        s += &format!(
            "Quarantined: {} ports (released less than {} s ago)\n",
            st.quarantined, st.quarantine_seconds
        );
    }
    if st.unavailable > 0 {
        s += &format!(
            "Unavailable: {} ports (in use outside portwarden or blocked)\n",
            st.unavailable
        );
    }
    for w in &st.warnings {
        s += &format!("⚠️  {}\n", p(w));
    }
    for a in &g.list {
        s += "\n";
        s += &allocation_block(a);
    }
    s += "\nWATCHDOG\n--------\n";
    match &g.watchdog {
        Ok(w) => {
            s += &format!(
                "Running: {}\nInterval: {}s\nChecks Performed: {}\nIssues Detected: {}\nReclaimed: {}\n",
                if w.running { "True" } else { "False" },
                w.interval_ms as f64 / 1000.0,
                w.checks_performed,
                w.issues_detected,
                w.reclaimed
            );
            if let Some(at) = rfc3339(w.last_run.as_ref()) {
                s += &format!("Last Pass: {at} ({:.1} ms)\n", w.last_run_duration_ms);
            }
        }
        Err(e) => s += &format!("Not available: {}\n", p(e.message())),
    }
    s += "\nNETWORK HEALTH\n--------------\n";
    match &g.network {
        Ok(r) => s += &proto_report(r),
        Err(e) => s += &format!("Not available: {}\n", p(e.message())),
    }
    s + &format!("\n{rule}\n")
}

fn to_json(g: &Gathered) -> serde_json::Value {
    let st = &g.st;
    let listed: Vec<String> = ranges(&st.ranges).split(", ").map(str::to_string).collect();
    let mut v = json!({
        "daemon": st.daemon.as_ref().map(|d| json!({
            "version": d.version,
            "pid": d.pid,
            "started_at": rfc3339(d.started_at.as_ref()),
            "listeners": d.listeners,
            "state_path": d.state_path,
        })),
        "ranges": listed,
        "total": st.total,
        "allocated": st.allocated,
        "available": st.available,
        "quarantined": st.quarantined,
        "unavailable": st.unavailable,
        "warnings": st.warnings,
        "allocations": g.list.iter().map(allocation_json).collect::<Vec<_>>(),
        // The keys of the REST status's test_pool.
        "test_pool": st.test_pool.as_ref().map(|t| json!({
            "port_range": ranges(&t.ranges).replace(", ", ","),
            "total": t.total,
            "allocated": t.allocated,
            "available": t.available,
            "resting": t.resting,
            "unavailable": t.unavailable,
        })),
    });
    v["watchdog"] = match &g.watchdog {
        Ok(w) => json!({
            "running": w.running,
            "interval_seconds": w.interval_ms as f64 / 1000.0,
            "checks_performed": w.checks_performed,
            "issues_detected": w.issues_detected,
            "reclaimed": w.reclaimed,
            "last_run": rfc3339(w.last_run.as_ref()),
            "last_run_duration_ms": w.last_run_duration_ms,
            "subscribers": w.subscribers,
            "last_sequence": w.last_sequence,
        }),
        Err(e) => json!({"error": e.message()}),
    };
    v["network"] = match &g.network {
        Ok(r) => super::decode::report(r).to_seed_json(),
        Err(e) => json!({"error": e.message()}),
    };
    v
}
