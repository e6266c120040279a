//! One shape for everything that happens in the daemon: an [`Event`] with a daemon-wide,
//! strictly increasing sequence number. It is rendered once, here, as JSON (stored in the log,
//! sent as Server-Sent Events); the gRPC layer converts the same value to protobuf.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ports::{Allocation, Health, OwnerKind, ReclaimReason};

/// What happened, with what is particular to it. The variant name is the event's `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventDetail {
    Allocated,
    Released,
    Renewed {
        requests_delta: u64,
        errors_delta: u64,
    },
    Reclaimed {
        reason: ReclaimReason,
    },
    HealthChanged {
        from: Health,
        to: Health,
        why: String,
    },
    /// A process other than the owner listens on an allocated port.
    SquatterSeen {
        holders: Vec<Holder>,
    },
    SquatterGone,
    /// A process outside portwarden listens on a free port of the managed range.
    OutsideListenerSeen {
        holders: Vec<Holder>,
    },
    OutsideListenerGone,
    /// CLOSE_WAIT sockets on an allocated port grew since the last pass: the service does not
    /// close connections its peers closed.
    ConnectionsLeaking {
        close_wait: u64,
        previous: u64,
    },
    NetworkStatusChanged {
        from: String,
        to: String,
        /// The checks whose status moved.
        moved: Vec<CheckMove>,
    },
    PassCompleted {
        allocations: u64,
        issues: u64,
        duration_ms: u64,
    },
}

/// The kind of an event, for filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Allocated,
    Released,
    Renewed,
    Reclaimed,
    HealthChanged,
    SquatterSeen,
    SquatterGone,
    OutsideListenerSeen,
    OutsideListenerGone,
    ConnectionsLeaking,
    NetworkStatusChanged,
    PassCompleted,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Allocated,
        EventKind::Released,
        EventKind::Renewed,
        EventKind::Reclaimed,
        EventKind::HealthChanged,
        EventKind::SquatterSeen,
        EventKind::SquatterGone,
        EventKind::OutsideListenerSeen,
        EventKind::OutsideListenerGone,
        EventKind::ConnectionsLeaking,
        EventKind::NetworkStatusChanged,
        EventKind::PassCompleted,
    ];

    /// The name used in JSON, SSE `event:` lines, filters and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Allocated => "allocated",
            EventKind::Released => "released",
            EventKind::Renewed => "renewed",
            EventKind::Reclaimed => "reclaimed",
            EventKind::HealthChanged => "health_changed",
            EventKind::SquatterSeen => "squatter_seen",
            EventKind::SquatterGone => "squatter_gone",
            EventKind::OutsideListenerSeen => "outside_listener_seen",
            EventKind::OutsideListenerGone => "outside_listener_gone",
            EventKind::ConnectionsLeaking => "connections_leaking",
            EventKind::NetworkStatusChanged => "network_status_changed",
            EventKind::PassCompleted => "pass_completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl EventDetail {
    pub fn kind(&self) -> EventKind {
        match self {
            EventDetail::Allocated => EventKind::Allocated,
            EventDetail::Released => EventKind::Released,
            EventDetail::Renewed { .. } => EventKind::Renewed,
            EventDetail::Reclaimed { .. } => EventKind::Reclaimed,
            EventDetail::HealthChanged { .. } => EventKind::HealthChanged,
            EventDetail::SquatterSeen { .. } => EventKind::SquatterSeen,
            EventDetail::SquatterGone => EventKind::SquatterGone,
            EventDetail::OutsideListenerSeen { .. } => EventKind::OutsideListenerSeen,
            EventDetail::OutsideListenerGone => EventKind::OutsideListenerGone,
            EventDetail::ConnectionsLeaking { .. } => EventKind::ConnectionsLeaking,
            EventDetail::NetworkStatusChanged { .. } => EventKind::NetworkStatusChanged,
            EventDetail::PassCompleted { .. } => EventKind::PassCompleted,
        }
    }
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: i32,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// A network check whose status changed between two passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckMove {
    pub check: String,
    pub from: String,
    pub to: String,
    pub note: String,
}

/// An allocation as events show it: everything recorded about it but the lease token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationView {
    pub port: u16,
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    pub health: Health,
    pub owner: OwnerKind,
    pub labels: BTreeMap<String, String>,
    pub allocated_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    pub request_count: u64,
    pub error_count: u64,
    pub network_health: String,
}

impl From<&Allocation> for AllocationView {
    fn from(a: &Allocation) -> Self {
        AllocationView {
            port: a.port,
            service: a.service.clone(),
            purpose: a.purpose.clone(),
            started_by: a.started_by.clone(),
            pid: a.pid(),
            pid_start_time: a.owner.as_ref().map(|o| o.start_time),
            owner_uid: a.owner_uid,
            health: a.health,
            owner: a.owner_kind(),
            labels: a.labels.clone(),
            allocated_at_ms: a.allocated_at_ms,
            expires_at_ms: a.expires.map(|d| d.wall_ms),
            renewed_at_ms: a.renewed_at_ms,
            ttl_seconds: a.ttl_seconds,
            request_count: a.request_count,
            error_count: a.error_count,
            network_health: a.network_health.clone(),
        }
    }
}

/// One thing that happened, numbered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Daemon-wide, strictly increasing, never reused (also across restarts).
    pub sequence: u64,
    /// Wall time, milliseconds since the Unix epoch.
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// The event in words, as logged.
    pub message: String,
    /// The allocation after the change (for allocation events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<AllocationView>,
    #[serde(flatten)]
    pub detail: EventDetail,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.detail.kind()
    }

    /// The JSON form (stored in the log and sent as Server-Sent Events).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// An event before it has its number: what the allocator or the watchdog observed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub port: Option<u16>,
    pub service: String,
    pub message: String,
    pub allocation: Option<AllocationView>,
    pub detail: EventDetail,
}

impl NewEvent {
    /// An event about `allocation` (its state after the change).
    pub fn about(allocation: &Allocation, message: String, detail: EventDetail) -> Self {
        NewEvent {
            port: Some(allocation.port),
            service: allocation.service.clone(),
            message,
            allocation: Some(allocation.into()),
            detail,
        }
    }

    /// An event about the host or the daemon, not one allocation.
    pub fn system(message: String, detail: EventDetail) -> Self {
        NewEvent {
            port: None,
            service: String::new(),
            message,
            allocation: None,
            detail,
        }
    }

    pub fn numbered(self, sequence: u64, at_ms: i64) -> Event {
        Event {
            sequence,
            at_ms,
            port: self.port,
            service: self.service,
            message: self.message,
            allocation: self.allocation,
            detail: self.detail,
        }
    }
}

/// Which events a watcher wants: empty sets mean all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub service: Option<String>,
    pub port: Option<u16>,
    pub kinds: Vec<EventKind>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        self.service.as_ref().is_none_or(|s| *s == e.service)
            && self.port.is_none_or(|p| Some(p) == e.port)
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind()))
    }

    /// Whether an allocation passes the service/port part (for snapshots).
    pub fn matches_allocation(&self, a: &AllocationView) -> bool {
        self.service.as_ref().is_none_or(|s| *s == a.service)
            && self.port.is_none_or(|p| p == a.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_through_its_json_with_its_kind_named() {
        let e = NewEvent::system(
            "Port 8000 (web): active -> unhealthy".into(),
            EventDetail::HealthChanged {
                from: Health::Active,
                to: Health::Unhealthy,
                why: "listener gone".into(),
            },
        )
        .numbered(7, 1_700_000_000_000);
        let json = e.to_json();
        assert!(json.contains(r#""kind":"health_changed""#), "{json}");
        assert!(json.contains(r#""from":"active""#), "{json}");
        assert_eq!(Event::from_json(&json).unwrap(), e);
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
    }
}
