//! Rendering of client replies: tables and seed-style text for people, JSON for programs.

use serde_json::{json, Value};

use portwarden_client::proto::{self, Allocation, Health, OwnerKind};

use crate::network::Report;

/// RFC 3339 (UTC) for a protobuf timestamp.
pub fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let days = ts.seconds.div_euclid(86_400);
    let secs = ts.seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

pub fn health_name(h: i32) -> &'static str {
    match Health::try_from(h).unwrap_or(Health::Unspecified) {
        Health::Allocated => "allocated",
        Health::Active => "active",
        Health::Unhealthy => "unhealthy",
        Health::Dead => "dead",
        Health::Unspecified => "unknown",
    }
}

pub fn owner_name(k: i32) -> &'static str {
    match OwnerKind::try_from(k).unwrap_or(OwnerKind::Unspecified) {
        OwnerKind::Permanent => "permanent",
        OwnerKind::Process => "process",
        OwnerKind::Lease => "lease",
        OwnerKind::ProcessAndLease => "process+lease",
        OwnerKind::Unspecified => "unknown",
    }
}

/// The allocation as JSON with the seed's snake_case names.
pub fn allocation_json(a: &Allocation) -> Value {
    json!({
        "port": a.port,
        "service": a.service,
        "purpose": a.purpose,
        "started_by": a.started_by,
        "pid": (a.pid != 0).then_some(a.pid),
        "health": health_name(a.health),
        "owner": owner_name(a.owner_kind),
        "labels": a.labels,
        "allocated_at": rfc3339(a.allocated_at.as_ref()),
        "expires_at": rfc3339(a.expires_at.as_ref()),
        "renewed_at": rfc3339(a.renewed_at.as_ref()),
        "ttl_seconds": (a.ttl_seconds != 0).then_some(a.ttl_seconds),
        "request_count": a.request_count,
        "error_count": a.error_count,
        "network_health": (!a.network_health.is_empty()).then_some(&a.network_health),
    })
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
            a.service.clone(),
            health_name(a.health).into(),
            owner_name(a.owner_kind).into(),
            if a.pid == 0 {
                "-".into()
            } else {
                a.pid.to_string()
            },
            rfc3339(a.expires_at.as_ref()).unwrap_or_else(|| "-".into()),
            a.purpose.clone(),
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
    let mut s = format!("Port {}: {}\n", a.port, a.service);
    if !a.purpose.is_empty() {
        s += &format!("  Purpose: {}\n", a.purpose);
    }
    if !a.started_by.is_empty() {
        s += &format!("  Started by: {}\n", a.started_by);
    }
    if a.pid != 0 {
        s += &format!("  PID: {}\n", a.pid);
    }
    s += &format!("  Health: {}\n", health_name(a.health));
    if let Some(exp) = rfc3339(a.expires_at.as_ref()) {
        s += &format!("  Lease expires: {exp}\n");
    }
    if !a.network_health.is_empty() {
        s += &format!("  Network Health: {}\n", a.network_health);
    }
    s += &format!(
        "  Requests: {}  Errors: {}\n",
        a.request_count, a.error_count
    );
    s
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
    let status = match r.status() {
        proto::OverallStatus::Healthy => "healthy",
        proto::OverallStatus::Warning => "warning",
        _ => "critical",
    };
    s + &status_line(status, r.critical_issues.len(), r.warnings.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339() {
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        assert_eq!(rfc3339(ts(0).as_ref()).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(ts(951_782_400).as_ref()).unwrap(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(ts(1_795_824_000).as_ref()).unwrap(),
            "2026-11-28T00:00:00Z"
        );
    }
}
