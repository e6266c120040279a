//! Rendering of client replies: tables and seed-style text for people, JSON for programs.

use serde_json::{json, Value};

use portwarden_client::proto::{self, Allocation, Health, OwnerKind};

use crate::network::Report;

/// Text that came from clients or other processes, safe for a terminal.
pub fn p(s: &str) -> String {
    crate::text::printable(s).into_owned()
}

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
        "owner_uid": (a.owner_uid >= 0).then_some(a.owner_uid),
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
        "observed": a.observed.as_ref().map(|o| json!({
            "at": rfc3339(o.at.as_ref()),
            "listener": o.listener,
            "squatters": o.squatters,
            "connections": o.connections,
            "process": o.process.as_ref().map(|p| json!({
                "name": p.name,
                "cmdline": p.cmdline,
                "rss_bytes": p.rss_bytes,
                "cpu_percent": p.cpu_percent,
            })),
        })),
    })
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
    let ttl = super::units::human(std::time::Duration::from_secs(a.ttl_seconds));
    match OwnerKind::try_from(a.owner_kind).unwrap_or(OwnerKind::Unspecified) {
        OwnerKind::Permanent => format!(
            "permanent: kept until released (portwarden release {})",
            a.port
        ),
        OwnerKind::Process => format!("process {}: reclaimed when it exits", a.pid),
        OwnerKind::Lease => format!("lease of {ttl}: reclaimed at {expires} unless renewed"),
        OwnerKind::ProcessAndLease => format!(
            "process {} and a lease of {ttl}: reclaimed when it exits, or at {expires} unless renewed",
            a.pid
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
            if a.pid == 0 {
                "-".into()
            } else {
                a.pid.to_string()
            },
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

/// "snake_case" name of a wire event kind.
pub fn event_kind_name(k: i32) -> String {
    proto::EventKind::try_from(k)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// One line per event: `#12 2026-11-28T01:02:03Z health_changed 8000 web: Port 8000 ...`.
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

/// An event as JSON: the same fields as the daemon's event JSON (sequence, at, kind, port,
/// service, message, the allocation, and what is particular to the kind).
pub fn event_json(e: &proto::WatchdogEvent) -> Value {
    let mut v = json!({
        "sequence": e.sequence,
        "at": rfc3339(e.at.as_ref()),
        "kind": event_kind_name(e.kind),
        "message": e.message,
    });
    if e.port != 0 {
        v["port"] = e.port.into();
    }
    if !e.service.is_empty() {
        v["service"] = e.service.clone().into();
    }
    if let Some(a) = &e.allocation {
        v["allocation"] = allocation_json(a);
    }
    if let Some(d) = &e.details {
        for (k, val) in &d.fields {
            v[k] = struct_value(val);
        }
    }
    v
}

/// google.protobuf.Value -> JSON (whole numbers stay integers).
fn struct_value(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => json!(*n as i64),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), struct_value(v)))
                .collect(),
        ),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(struct_value).collect()),
        Some(Kind::NullValue(_)) | None => Value::Null,
    }
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
