//! Domain -> proto conversions, one small function per type.

use prost_types::Timestamp;

use crate::ports::{Allocation, Health, OwnerKind, PortVerdict, PortVerdictState};
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
        port: u32::from(a.port),
        service: a.service.clone(),
        purpose: a.purpose.clone(),
        started_by: a.started_by.clone(),
        pid: a.pid.unwrap_or(0),
        pid_start_time: a.pid_start_time.unwrap_or(0),
        labels: a.labels.clone().into_iter().collect(),
        allocated_at: Some(timestamp(a.allocated_at_ms)),
        expires_at: a.expires_at_ms.map(timestamp),
        ttl_seconds: a.ttl_seconds.unwrap_or(0),
        health: health(a.health) as i32,
        owner_kind: owner_kind(a.owner_kind()) as i32,
        request_count: a.request_count,
        error_count: a.error_count,
        owner_uid: a.owner_uid.map_or(-1, i64::from),
        renewed_at: a.renewed_at_ms.map(timestamp),
        network_health: a.network_health.clone(),
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
    };
    proto::PortCheck {
        port: u32::from(v.port),
        state: state as i32,
        reason: v.reason.clone(),
        in_managed_range: v.in_managed_range,
    }
}
