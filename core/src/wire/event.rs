//! The event object, and the two lines a snapshot watch starts with.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{timestamp, Allocation};

/// One thing that happened, numbered. The keys common to every kind are always present; each
/// kind adds its own (a reclaim's `reason`, a health change's `from`, `to` and `why`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Daemon-wide, strictly increasing, never reused (also across restarts).
    pub sequence: u64,
    #[schema(format = DateTime, example = "2026-12-03T23:45:30.070Z")]
    pub at: String,
    /// `allocated`, `released`, `renewed`, `reclaimed`, `health_changed`, `squatter_seen`,
    /// `squatter_gone`, `outside_listener_seen`, `outside_listener_gone`,
    /// `connections_leaking`, `network_status_changed` or `pass_completed`.
    pub kind: String,
    /// The port it is about; null for events about the host or the daemon.
    pub port: Option<u16>,
    /// The service it is about; null for events about the host or the daemon.
    pub service: Option<String>,
    /// The event in words, as logged.
    pub message: String,
    /// The allocation after the change (allocation events); else null.
    pub allocation: Option<Allocation>,
    /// What is particular to the kind.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub detail: Map<String, Value>,
}

impl From<&crate::events::Event> for Event {
    fn from(e: &crate::events::Event) -> Self {
        let mut detail = match serde_json::to_value(&e.detail) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        detail.remove("kind");
        Self {
            sequence: e.sequence,
            at: timestamp(e.at_ms),
            kind: e.kind().as_str().to_string(),
            port: e.port,
            service: (!e.service.is_empty()).then(|| e.service.clone()),
            message: e.message.clone(),
            allocation: e.allocation.as_ref().map(|a| Allocation::new(a, None)),
            detail,
        }
    }
}

/// A snapshot watch's first lines: one per current allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotEntry {
    /// Always `existing`.
    #[schema(example = "existing")]
    pub kind: String,
    pub allocation: Allocation,
}

impl SnapshotEntry {
    pub fn new(allocation: Allocation) -> Self {
        Self {
            kind: "existing".into(),
            allocation,
        }
    }
}

/// The line after the snapshot: it is complete and consistent as of `sequence`; every event
/// after it follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotComplete {
    /// Always `snapshot_complete`.
    #[schema(example = "snapshot_complete")]
    pub kind: String,
    pub sequence: u64,
}

impl SnapshotComplete {
    pub fn new(sequence: u64) -> Self {
        Self {
            kind: "snapshot_complete".into(),
            sequence,
        }
    }
}

/// The last item of an event stream that cannot go on where it was (SSE `event: reset`): the
/// watcher fell behind, or asked to resume from a position that is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reset {
    /// Always `reset`.
    #[schema(example = "reset")]
    pub kind: String,
    /// What happened and what to do.
    pub message: String,
    /// Where a reconnect resumes (`Last-Event-ID`); null when it must start over.
    pub sequence: Option<u64>,
    /// The oldest sequence a stream can still resume after; null when not the reason.
    pub oldest_retained_sequence: Option<u64>,
}

impl Reset {
    pub fn new(
        message: String,
        sequence: Option<u64>,
        oldest_retained_sequence: Option<u64>,
    ) -> Self {
        Self {
            kind: "reset".into(),
            message,
            sequence,
            oldest_retained_sequence,
        }
    }
}
