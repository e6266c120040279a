//! The allocation object: everything recorded about an allocation but its lease token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::timestamp;
use crate::events::AllocationView;
use crate::network::OverallStatus;
use crate::ports::{Health, Listener, Observation, OwnerKind};

/// One allocation and everything recorded about it (never its lease token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Allocation {
    pub port: u16,
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    /// Owning process; null when none.
    pub pid: Option<i32>,
    /// Start time of the owning process in clock ticks since boot (catches PID reuse); null
    /// when there is no owning process.
    pub pid_start_time: Option<u64>,
    /// uid of the user who allocated (0 is root); null when the daemon could not identify the
    /// caller (a remote one).
    pub owner_uid: Option<u32>,
    pub labels: BTreeMap<String, String>,
    #[schema(format = DateTime, example = "2026-12-03T23:45:30.070Z")]
    pub allocated_at: String,
    /// The last renewal; null before the first.
    #[schema(format = DateTime)]
    pub renewed_at: Option<String>,
    /// When a lease runs out unless renewed; null without a TTL.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Lease length; null without a TTL.
    pub ttl_seconds: Option<u64>,
    pub health: Health,
    /// What keeps the allocation: `permanent` (until released), `process` (while `pid`
    /// lives), `lease` (while renewed before `expires_at`), `process_and_lease` (both).
    pub owner_kind: OwnerKind,
    pub request_count: u64,
    pub error_count: u64,
    /// Overall status of the network checks run before allocation; null when none ran.
    pub network_health: Option<OverallStatus>,
    /// What the watchdog saw at its last pass; null before the first (and in events, which
    /// record a change, not a pass).
    pub observed: Option<Observed>,
}

/// One watchdog pass's view of an allocated port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Observation)]
pub struct Observed {
    #[schema(format = DateTime)]
    pub at: String,
    /// `nobody`, `owner`, `unverified` (someone listens; the owner is unknown or unreadable) or
    /// `squatter`.
    pub listener: String,
    /// The processes listening instead of the owner ("pid 12 (nc)").
    pub squatters: Vec<String>,
    /// Sockets on the port by TCP state, listeners excluded.
    pub connections: BTreeMap<String, u64>,
    /// The owning process as last seen; null when it has none or could not be read.
    pub process: Option<ProcessStats>,
}

/// The owning process as the watchdog last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessStats {
    pub name: String,
    pub cmdline: String,
    pub rss_bytes: u64,
    /// CPU use since the previous pass, percent of one core.
    pub cpu_percent: f32,
}

impl Allocation {
    /// The allocation as recorded (`view`) with the watchdog's last look at it, if any.
    pub fn new(view: &AllocationView, observed: Option<&Observation>) -> Self {
        Self {
            port: view.port,
            service: view.service.clone(),
            purpose: view.purpose.clone(),
            started_by: view.started_by.clone(),
            pid: view.pid,
            pid_start_time: view.pid_start_time,
            owner_uid: view.owner_uid,
            labels: view.labels.clone(),
            allocated_at: timestamp(view.allocated_at_ms),
            renewed_at: view.renewed_at_ms.map(timestamp),
            expires_at: view.expires_at_ms.map(timestamp),
            ttl_seconds: view.ttl_seconds,
            health: view.health,
            owner_kind: view.owner,
            request_count: view.request_count,
            error_count: view.error_count,
            network_health: OverallStatus::parse(&view.network_health),
            observed: observed.map(Observed::from),
        }
    }
}

impl From<&crate::ports::Allocation> for Allocation {
    fn from(a: &crate::ports::Allocation) -> Self {
        Self::new(&AllocationView::from(a), a.observed.as_ref())
    }
}

impl From<&Observation> for Observed {
    fn from(o: &Observation) -> Self {
        let (listener, squatters) = match &o.listener {
            Listener::Nobody => ("nobody", Vec::new()),
            Listener::Owner => ("owner", Vec::new()),
            Listener::Unverified => ("unverified", Vec::new()),
            Listener::Squatters(h) => ("squatter", h.iter().map(ToString::to_string).collect()),
        };
        Self {
            at: timestamp(o.at_ms),
            listener: listener.into(),
            squatters,
            connections: o.connections.clone(),
            process: o.process.as_ref().map(|p| ProcessStats {
                name: p.name.clone(),
                cmdline: p.cmdline.clone(),
                rss_bytes: p.rss_bytes,
                cpu_percent: p.cpu_percent,
            }),
        }
    }
}
