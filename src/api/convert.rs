//! Domain -> proto conversions, one small function per type.

use prost_types::{value::Kind, ListValue, Struct, Timestamp, Value};

use crate::network::{self, CheckResult, CheckStatus, OverallStatus, Report};

use crate::events::{AllocationView, Event, EventDetail, EventKind};
use crate::ports::{
    Allocation, Health, Listener, Observation, OwnerKind, Pool, PortVerdict, PortVerdictState,
    ProjectPort, ProjectPortState, ProjectRecord,
};
use crate::proto;

pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn health(h: Health) -> proto::Health {
    match h {
        Health::Allocated => proto::Health::Allocated,
        Health::Active => proto::Health::Active,
        Health::Unhealthy => proto::Health::Unhealthy,
        Health::Dead => proto::Health::Dead,
    }
}

pub fn port_ranges(r: &crate::ports::RangeSet) -> Vec<proto::PortRange> {
    r.ranges()
        .iter()
        .map(|r| proto::PortRange {
            start: r.start.into(),
            end: r.end.into(),
        })
        .collect()
}

/// The wire's pool; unspecified is the service pool.
pub fn pool(p: proto::Pool) -> Pool {
    match p {
        proto::Pool::Unspecified | proto::Pool::Service => Pool::Service,
        proto::Pool::Test => Pool::Test,
    }
}

/// A project's remembered port, with what holds it now.
pub fn project_port(p: &ProjectPort) -> proto::ProjectPort {
    let (state, allocation, holder) = match &p.state {
        ProjectPortState::Held(a) => (proto::ProjectPortState::Held, Some(allocation(a)), ""),
        ProjectPortState::Free => (proto::ProjectPortState::Free, None, ""),
        ProjectPortState::Taken { service } => {
            (proto::ProjectPortState::Taken, None, service.as_str())
        }
    };
    proto::ProjectPort {
        state: state as i32,
        allocation,
        holder: holder.to_string(),
        ..project_record(&p.record)
    }
}

/// A record alone (what ForgetProject forgot).
pub fn project_record(r: &ProjectRecord) -> proto::ProjectPort {
    proto::ProjectPort {
        project: r.key.project.clone(),
        name: r.key.name.clone(),
        port: r.port.into(),
        service: r.service.clone(),
        state: proto::ProjectPortState::Unspecified as i32,
        allocation: None,
        holder: String::new(),
        owner_uid: r.owner_uid,
        updated_at: Some(timestamp(r.updated_at_ms)),
    }
}

fn owner_kind(k: OwnerKind) -> proto::OwnerKind {
    match k {
        OwnerKind::Permanent => proto::OwnerKind::Permanent,
        OwnerKind::Process => proto::OwnerKind::Process,
        OwnerKind::Lease => proto::OwnerKind::Lease,
        OwnerKind::ProcessAndLease => proto::OwnerKind::ProcessAndLease,
    }
}

pub fn allocation(a: &Allocation) -> proto::Allocation {
    proto::Allocation {
        observed: a.observed.as_ref().map(observation),
        ..allocation_view(&AllocationView::from(a))
    }
}

/// An allocation as events carry it (no observation: events are about changes).
pub fn allocation_view(a: &AllocationView) -> proto::Allocation {
    proto::Allocation {
        port: u32::from(a.port),
        service: a.service.clone(),
        purpose: a.purpose.clone(),
        started_by: a.started_by.clone(),
        pid: a.pid,
        pid_start_time: a.pid_start_time,
        labels: a.labels.clone().into_iter().collect(),
        allocated_at: Some(timestamp(a.allocated_at_ms)),
        expires_at: a.expires_at_ms.map(timestamp),
        ttl_seconds: a.ttl_seconds,
        health: health(a.health) as i32,
        owner_kind: owner_kind(a.owner) as i32,
        request_count: a.request_count,
        error_count: a.error_count,
        owner_uid: a.owner_uid,
        renewed_at: a.renewed_at_ms.map(timestamp),
        network_health: network_health(&a.network_health) as i32,
        observed: None,
    }
}

fn observation(o: &Observation) -> proto::Observation {
    let (listener, squatters) = match &o.listener {
        Listener::Nobody => ("nobody", Vec::new()),
        Listener::Owner => ("owner", Vec::new()),
        Listener::Unverified => ("unverified", Vec::new()),
        Listener::Squatters(h) => ("squatter", h.iter().map(ToString::to_string).collect()),
    };
    proto::Observation {
        at: Some(timestamp(o.at_ms)),
        listener: listener.to_string(),
        squatters,
        connections: o.connections.clone().into_iter().collect(),
        process: o.process.as_ref().map(|p| proto::ProcessStats {
            name: p.name.clone(),
            cmdline: p.cmdline.clone(),
            rss_bytes: p.rss_bytes,
            cpu_percent: p.cpu_percent,
        }),
    }
}

pub fn event_kind(k: EventKind) -> proto::EventKind {
    match k {
        EventKind::Allocated => proto::EventKind::Allocated,
        EventKind::Released => proto::EventKind::Released,
        EventKind::Renewed => proto::EventKind::Renewed,
        EventKind::Reclaimed => proto::EventKind::Reclaimed,
        EventKind::HealthChanged => proto::EventKind::HealthChanged,
        EventKind::SquatterSeen => proto::EventKind::SquatterSeen,
        EventKind::SquatterGone => proto::EventKind::SquatterGone,
        EventKind::OutsideListenerSeen => proto::EventKind::OutsideListenerSeen,
        EventKind::OutsideListenerGone => proto::EventKind::OutsideListenerGone,
        EventKind::ConnectionsLeaking => proto::EventKind::ConnectionsLeaking,
        EventKind::NetworkStatusChanged => proto::EventKind::NetworkStatusChanged,
        EventKind::PassCompleted => proto::EventKind::PassCompleted,
    }
}

/// The domain kind of a wire kind; None for UNSPECIFIED, the retired NETWORK_ISSUE and
/// unknown values.
pub fn event_kind_from(k: i32) -> Option<EventKind> {
    EventKind::ALL
        .into_iter()
        .find(|d| event_kind(*d) as i32 == k)
}

pub fn event(e: &Event) -> proto::WatchdogEvent {
    let mut details = match serde_json::to_value(&e.detail) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    details.remove("kind");
    let (previous_health, reason) = match &e.detail {
        EventDetail::HealthChanged { from, why, .. } => (health(*from), why.clone()),
        EventDetail::Reclaimed { reason } => {
            (proto::Health::Unspecified, reason.as_str().to_string())
        }
        _ => (proto::Health::Unspecified, String::new()),
    };
    proto::WatchdogEvent {
        kind: event_kind(e.kind()) as i32,
        at: Some(timestamp(e.at_ms)),
        port: e.port.map_or(0, u32::from),
        service: e.service.clone(),
        message: e.message.clone(),
        health: e
            .allocation
            .as_ref()
            .map_or(proto::Health::Unspecified, |a| health(a.health)) as i32,
        sequence: e.sequence,
        previous_health: previous_health as i32,
        reason,
        allocation: e.allocation.as_ref().map(allocation_view),
        details: (!details.is_empty()).then(|| json_struct(&details)),
    }
}

pub fn port_check(v: &PortVerdict) -> proto::PortCheck {
    let state = match v.state {
        PortVerdictState::Free => proto::PortState::Free,
        PortVerdictState::Allocated => proto::PortState::Allocated,
        PortVerdictState::Quarantined => proto::PortState::Quarantined,
        PortVerdictState::InUse => proto::PortState::InUse,
        PortVerdictState::Blocked => proto::PortState::Blocked,
        PortVerdictState::OutsideRange => proto::PortState::OutsideRange,
        PortVerdictState::Unknown => proto::PortState::Unknown,
    };
    proto::PortCheck {
        port: u32::from(v.port),
        state: state as i32,
        reason: v.reason.clone(),
        in_managed_range: v.in_managed_range,
        holder: v.holder.clone().unwrap_or_default(),
    }
}

/// serde_json -> google.protobuf.Value (numbers become doubles, as protobuf JSON does).
pub fn json_value(v: &serde_json::Value) -> Value {
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(ListValue {
            values: a.iter().map(json_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(json_struct(o)),
    };
    Value { kind: Some(kind) }
}

pub fn json_struct(map: &serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_value(v)))
            .collect(),
    }
}

fn check_status(s: CheckStatus) -> proto::CheckStatus {
    match s {
        CheckStatus::Ok => proto::CheckStatus::Ok,
        CheckStatus::Info => proto::CheckStatus::Info,
        CheckStatus::Warning => proto::CheckStatus::Warning,
        CheckStatus::Critical => proto::CheckStatus::Critical,
    }
}

pub fn check(c: &CheckResult) -> proto::Check {
    proto::Check {
        name: c.name.clone(),
        status: check_status(c.status) as i32,
        note: c.note.clone(),
        recommendation: c.recommendation.clone().unwrap_or_default(),
        fields: Some(json_struct(&c.fields)),
    }
}

pub fn overall_status(s: OverallStatus) -> proto::OverallStatus {
    match s {
        OverallStatus::Healthy => proto::OverallStatus::Healthy,
        OverallStatus::Warning => proto::OverallStatus::Warning,
        OverallStatus::Critical => proto::OverallStatus::Critical,
    }
}

/// A recorded status by name; unspecified when no checks ran ("").
pub fn network_health(name: &str) -> proto::OverallStatus {
    OverallStatus::parse(name).map_or(proto::OverallStatus::Unspecified, overall_status)
}

pub fn report(r: &Report) -> proto::NetworkReport {
    proto::NetworkReport {
        status: overall_status(r.status) as i32,
        critical_issues: r.critical_issues.clone(),
        warnings: r.warnings.clone(),
        checks: r.checks.iter().map(check).collect(),
        duration_ms: r.duration_ms,
    }
}

fn io_counters(c: &network::IoCounters) -> proto::IoCounters {
    proto::IoCounters {
        bytes_sent: c.bytes_sent,
        bytes_recv: c.bytes_recv,
        packets_sent: c.packets_sent,
        packets_recv: c.packets_recv,
        errors_in: c.errors_in,
        errors_out: c.errors_out,
        drops_in: c.drops_in,
        drops_out: c.drops_out,
    }
}

pub fn io_stats(s: &network::IoStats) -> proto::StatsResponse {
    proto::StatsResponse {
        io: Some(io_counters(&s.total)),
        interfaces: s
            .interfaces
            .iter()
            .map(|(name, c)| proto::InterfaceCounters {
                name: name.clone(),
                io: Some(io_counters(c)),
            })
            .collect(),
        connections: Some(proto::ConnectionCounts {
            total: s.connections.total,
            by_status: s.connections.by_status.clone().into_iter().collect(),
            source: s
                .connections
                .source
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
        }),
    }
}

pub fn daemon_info(d: &crate::daemon_info::DaemonInfo) -> proto::DaemonInfo {
    proto::DaemonInfo {
        version: d.version.to_string(),
        started_at: Some(timestamp(d.started_at_ms)),
        listeners: d.listeners(),
        state_path: d.state_path.display().to_string(),
        pid: d.pid,
    }
}
