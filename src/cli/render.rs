//! Rendering of client replies: tables and seed-style text for people, JSON for programs.

use serde_json::Value;

use portwarden_client::proto::{self, Allocation, OwnerKind};

use crate::network::Report;

/// Text that came from clients or other processes, safe for a terminal.
pub fn p(s: &str) -> String {
    crate::text::printable(s).into_owned()
}

pub use super::decode::timestamp as rfc3339;

pub fn health_name(h: i32) -> &'static str {
    super::decode::health(h).map_or("unknown", |h| h.as_str())
}

pub fn owner_name(k: i32) -> &'static str {
    super::decode::owner_kind(k).map_or("unknown", |k| k.as_str())
}

/// The allocation object of the wire vocabulary (as REST and SSE send it).
pub fn allocation_json(a: &Allocation) -> Value {
    serde_json::to_value(super::decode::allocation(a)).unwrap_or(Value::Null)
}

/// "team=infra, tier=web".
pub fn labels(a: &Allocation) -> String {
    let mut labels: Vec<String> = a
        .labels
        .iter()
        .map(|(k, v)| format!("{}={}", p(k), p(v)))
        .collect();
    labels.sort();
    labels.join(", ")
}

/// What keeps the allocation, in words: the kind of owner (as `list` and `--json` name it) and
/// how it ends.
pub fn owner_line(a: &Allocation) -> String {
    let expires = rfc3339(a.expires_at.as_ref()).unwrap_or_default();
    let ttl = super::units::human(std::time::Duration::from_secs(a.ttl_seconds.unwrap_or(0)));
    let pid = a.pid.unwrap_or(0);
    match OwnerKind::try_from(a.owner_kind).unwrap_or(OwnerKind::Unspecified) {
        OwnerKind::Permanent => format!(
            "permanent: kept until released (portwarden release {})",
            a.port
        ),
        OwnerKind::Process => format!("process {pid}: reclaimed when it exits"),
        OwnerKind::Lease => format!("lease of {ttl}: reclaimed at {expires} unless renewed"),
        OwnerKind::ProcessAndLease => format!(
            "process {pid} and a lease of {ttl}: reclaimed when it exits, or at {expires} unless renewed"
        ),
        OwnerKind::Unspecified => "unknown".into(),
    }
}

/// One line per allocation, aligned.
pub fn allocation_table(list: &[Allocation]) -> String {
    let mut rows = vec![[
        "PORT".to_string(),
        "SERVICE".into(),
        "HEALTH".into(),
        "OWNER".into(),
        "PID".into(),
        "EXPIRES".into(),
        "PURPOSE".into(),
    ]];
    for a in list {
        rows.push([
            a.port.to_string(),
            p(&a.service),
            health_name(a.health).into(),
            owner_name(a.owner_kind).into(),
            a.pid.map_or_else(|| "-".into(), |pid| pid.to_string()),
            rfc3339(a.expires_at.as_ref()).unwrap_or_else(|| "-".into()),
            p(&a.purpose),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The seed's block for one allocation.
pub fn allocation_block(a: &Allocation) -> String {
    let mut s = format!("Port {}: {}\n", a.port, p(&a.service));
    if !a.purpose.is_empty() {
        s += &format!("  Purpose: {}\n", p(&a.purpose));
    }
    if !a.started_by.is_empty() {
        s += &format!("  Started by: {}\n", p(&a.started_by));
    }
    s += &format!("  Owner: {}\n", owner_line(a));
    if let Some(at) = rfc3339(a.allocated_at.as_ref()) {
        s += &format!("  Allocated: {at}\n");
    }
    if !a.labels.is_empty() {
        s += &format!("  Labels: {}\n", labels(a));
    }
    if let Some(pid) = a.pid {
        s += &format!("  PID: {pid}\n");
    }
    s += &format!("  Health: {}\n", health_name(a.health));
    if let Some(exp) = rfc3339(a.expires_at.as_ref()) {
        s += &format!("  Lease expires: {exp}\n");
    }
    if let Some(status) = super::decode::overall_status(a.network_health) {
        s += &format!("  Network Health: {}\n", status.as_str());
    }
    s += &format!(
        "  Requests: {}  Errors: {}\n",
        a.request_count, a.error_count
    );
    if let Some(o) = &a.observed {
        let listener = match o.listener.as_str() {
            "squatter" => format!("taken by {}", p(&o.squatters.join(", "))),
            other => other.to_string(),
        };
        s += &format!("  Listener: {listener}\n");
        if !o.connections.is_empty() {
            let mut by_state: Vec<_> = o.connections.iter().collect();
            by_state.sort();
            let list: Vec<String> = by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s += &format!("  Connections: {}\n", list.join(", "));
        }
        if let Some(proc) = &o.process {
            s += &format!(
                "  Process: {} ({:.1} MB RSS, {:.1}% CPU)\n",
                p(&proc.name),
                proc.rss_bytes as f64 / 1_048_576.0,
                proc.cpu_percent
            );
        }
    }
    s
}

pub use super::decode::event_kind as event_kind_name;

/// One line per event: `#12 2026-11-28T01:02:03.000Z health_changed 8000 web: Port 8000 ...`.
pub fn event_line(e: &proto::WatchdogEvent) -> String {
    let at = rfc3339(e.at.as_ref()).unwrap_or_default();
    let mut s = format!("#{} {at} {}", e.sequence, event_kind_name(e.kind));
    if e.port != 0 {
        s += &format!(" {}", e.port);
    }
    if !e.service.is_empty() {
        s += &format!(" {}", p(&e.service));
    }
    s + &format!(": {}", p(&e.message))
}

/// ✓ ok, ℹ info, ⚠ warning, ✗ critical.
fn mark(status: &str) -> &'static str {
    match status {
        "ok" => "✓",
        "info" => "ℹ",
        "warning" => "⚠",
        _ => "✗",
    }
}

fn check_line(status: &str, name: &str, note: &str) -> String {
    format!("  {} {name}: {note}\n", mark(status))
}

fn status_line(status: &str, critical: usize, warnings: usize) -> String {
    format!("[NETWORK-HARDENING] Status: {status} ({critical} critical, {warnings} warnings)\n")
}

/// The seed's report: one line per check, then the status line.
pub fn check_report(r: &Report, port: Option<u16>) -> String {
    let mut s = match port {
        Some(p) => format!("[NETWORK-HARDENING] Running comprehensive checks for port {p}\n"),
        None => "[NETWORK-HARDENING] Running comprehensive checks\n".to_string(),
    };
    for c in &r.checks {
        s += &check_line(c.status.as_str(), &c.name, &c.note);
    }
    s + &status_line(r.status.as_str(), r.critical_issues.len(), r.warnings.len())
}

/// The same report as it arrives over gRPC.
pub fn proto_report(r: &proto::NetworkReport) -> String {
    let mut s = String::new();
    for c in &r.checks {
        let status = match c.status() {
            proto::CheckStatus::Ok => "ok",
            proto::CheckStatus::Info => "info",
            proto::CheckStatus::Warning => "warning",
            _ => "critical",
        };
        s += &check_line(status, &c.name, &c.note);
    }
    let status = super::status::network_status(r);
    s + &status_line(status, r.critical_issues.len(), r.warnings.len())
}
