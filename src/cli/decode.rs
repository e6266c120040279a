//! The daemon's protobuf replies as the wire vocabulary (`crate::wire`): what `--json` prints
//! is the object REST and SSE send, built here from the gRPC reply instead of the domain.

use portwarden_client::proto;
use prost_types::Timestamp;
use serde_json::{Map, Value};

use crate::network::OverallStatus;
use crate::ports::{Health, OwnerKind};
use crate::wire;

/// Milliseconds since the Unix epoch of a protobuf timestamp (the wire's precision).
pub fn millis(ts: &Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

pub fn timestamp(ts: Option<&Timestamp>) -> Option<String> {
    ts.map(|t| wire::timestamp(millis(t)))
}

pub fn health(h: i32) -> Option<Health> {
    Some(match proto::Health::try_from(h).ok()? {
        proto::Health::Allocated => Health::Allocated,
        proto::Health::Active => Health::Active,
        proto::Health::Unhealthy => Health::Unhealthy,
        proto::Health::Dead => Health::Dead,
        proto::Health::Unspecified => return None,
    })
}

pub fn owner_kind(k: i32) -> Option<OwnerKind> {
    Some(match proto::OwnerKind::try_from(k).ok()? {
        proto::OwnerKind::Permanent => OwnerKind::Permanent,
        proto::OwnerKind::Process => OwnerKind::Process,
        proto::OwnerKind::Lease => OwnerKind::Lease,
        proto::OwnerKind::ProcessAndLease => OwnerKind::ProcessAndLease,
        proto::OwnerKind::Unspecified => return None,
    })
}

pub fn overall_status(s: i32) -> Option<OverallStatus> {
    Some(match proto::OverallStatus::try_from(s).ok()? {
        proto::OverallStatus::Healthy => OverallStatus::Healthy,
        proto::OverallStatus::Warning => OverallStatus::Warning,
        proto::OverallStatus::Critical => OverallStatus::Critical,
        proto::OverallStatus::Unspecified => return None,
    })
}

pub fn allocation(a: &proto::Allocation) -> wire::Allocation {
    wire::Allocation {
        port: a.port as u16,
        service: a.service.clone(),
        purpose: a.purpose.clone(),
        started_by: a.started_by.clone(),
        pid: a.pid,
        pid_start_time: a.pid_start_time,
        owner_uid: a.owner_uid,
        labels: a.labels.clone().into_iter().collect(),
        allocated_at: timestamp(a.allocated_at.as_ref()).unwrap_or_default(),
        renewed_at: timestamp(a.renewed_at.as_ref()),
        expires_at: timestamp(a.expires_at.as_ref()),
        ttl_seconds: a.ttl_seconds,
        // A daemon always sends both; an older one that did not is read as the least claim.
        health: health(a.health).unwrap_or(Health::Allocated),
        owner_kind: owner_kind(a.owner_kind).unwrap_or(OwnerKind::Permanent),
        request_count: a.request_count,
        error_count: a.error_count,
        network_health: overall_status(a.network_health),
        observed: a.observed.as_ref().map(|o| wire::Observed {
            at: timestamp(o.at.as_ref()).unwrap_or_default(),
            listener: o.listener.clone(),
            squatters: o.squatters.clone(),
            connections: o.connections.clone().into_iter().collect(),
            process: o.process.as_ref().map(|p| wire::ProcessStats {
                name: p.name.clone(),
                cmdline: p.cmdline.clone(),
                rss_bytes: p.rss_bytes,
                cpu_percent: p.cpu_percent,
            }),
        }),
    }
}

/// The event's kind as the wire names it (`health_changed`).
pub fn event_kind(k: i32) -> String {
    proto::EventKind::try_from(k)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

pub fn event(e: &proto::WatchdogEvent) -> wire::Event {
    let detail: Map<String, Value> = e
        .details
        .as_ref()
        .map(|d| {
            d.fields
                .iter()
                .map(|(k, v)| (k.clone(), struct_value(v)))
                .collect()
        })
        .unwrap_or_default();
    wire::Event {
        sequence: e.sequence,
        at: timestamp(e.at.as_ref()).unwrap_or_default(),
        kind: event_kind(e.kind),
        port: (e.port != 0).then_some(e.port as u16),
        service: (!e.service.is_empty()).then(|| e.service.clone()),
        message: e.message.clone(),
        allocation: e.allocation.as_ref().map(allocation),
        detail,
    }
}

pub fn port_check(c: &proto::PortCheck) -> wire::PortCheck {
    use wire::PortState;
    let state = match c.state() {
        proto::PortState::Free => PortState::Free,
        proto::PortState::Allocated => PortState::Allocated,
        proto::PortState::Quarantined => PortState::Quarantined,
        proto::PortState::InUse => PortState::InUse,
        proto::PortState::Blocked => PortState::Blocked,
        proto::PortState::OutsideRange => PortState::OutsideRange,
        proto::PortState::Unknown | proto::PortState::Unspecified => PortState::Unknown,
    };
    wire::PortCheck {
        port: c.port as u16,
        state,
        holder: (!c.holder.is_empty()).then(|| c.holder.clone()),
        reason: c.reason.clone(),
        in_managed_range: c.in_managed_range,
    }
}

/// google.protobuf.Value -> JSON. Every number an event carries is a whole number (counts,
/// pids, milliseconds), so whole doubles become integers again, as the daemon wrote them.
fn struct_value(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => {
            if *n < 0.0 {
                Value::from(*n as i64)
            } else {
                Value::from(*n as u64)
            }
        }
        Some(Kind::NumberValue(n)) => Value::from(*n),
        Some(Kind::StringValue(s)) => Value::from(s.clone()),
        Some(Kind::BoolValue(b)) => Value::from(*b),
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

/// The network report as the domain holds it (so it renders as `check --json` and REST do).
pub fn report(r: &proto::NetworkReport) -> crate::network::Report {
    use crate::network::{CheckResult, CheckStatus};
    let checks = r
        .checks
        .iter()
        .map(|c| CheckResult {
            name: c.name.clone(),
            status: match c.status() {
                proto::CheckStatus::Ok => CheckStatus::Ok,
                proto::CheckStatus::Info => CheckStatus::Info,
                proto::CheckStatus::Warning => CheckStatus::Warning,
                proto::CheckStatus::Critical | proto::CheckStatus::Unspecified => {
                    CheckStatus::Critical
                }
            },
            note: c.note.clone(),
            recommendation: (!c.recommendation.is_empty()).then(|| c.recommendation.clone()),
            fields: c
                .fields
                .as_ref()
                .map(|f| {
                    f.fields
                        .iter()
                        .map(|(k, v)| (k.clone(), struct_value(v)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    crate::network::Report {
        status: overall_status(r.status).unwrap_or(OverallStatus::Critical),
        critical_issues: r.critical_issues.clone(),
        warnings: r.warnings.clone(),
        checks,
        duration_ms: r.duration_ms,
    }
}

pub fn allocated(r: &proto::AllocateResponse) -> wire::Allocated {
    wire::Allocated {
        allocation: allocation(&r.allocation.clone().unwrap_or_default()),
        lease_token: r.lease_token.clone(),
        network_health: overall_status(r.network_health),
        warnings: r.warnings.clone(),
        network_report: r.network_report.as_ref().map(|n| report(n).to_seed_json()),
        reused: r.reused,
    }
}

pub fn released(r: &proto::ReleaseResponse) -> wire::Released {
    wire::Released {
        allocation: allocation(&r.allocation.clone().unwrap_or_default()),
        quarantined_until: timestamp(r.quarantined_until.as_ref()).unwrap_or_default(),
    }
}
