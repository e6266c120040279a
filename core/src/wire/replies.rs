//! The answers to allocate and release: the allocation object plus what only that answer has.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{timestamp, Allocation};
use crate::network::OverallStatus;
use crate::ports::{Granted, Released as ReleasedPort};

/// The answer to an allocation (HTTP 201; 200 when `reuse` or a project handed back an
/// existing one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Allocated {
    pub allocation: Allocation,
    /// Needed to release or renew (`X-Lease-Token`), unless the caller is root or the same uid
    /// over the Unix socket.
    pub lease_token: String,
    /// Overall status of the network checks run before allocation; null when none ran.
    pub network_health: Option<OverallStatus>,
    /// One line each: a `prefer` port that could not be had because it is outside the managed
    /// ranges, then the warnings of those checks.
    pub warnings: Vec<String>,
    /// Those checks in full; null when none ran.
    #[schema(value_type = Option<super::ReportDoc>)]
    pub network_report: Option<Value>,
    /// True when an existing allocation was handed back (no network checks ran: the report is
    /// null and the warnings empty).
    pub reused: bool,
}

impl From<&Granted> for Allocated {
    fn from(g: &Granted) -> Self {
        let a = &g.allocation;
        Self {
            allocation: Allocation::from(a),
            lease_token: a.lease_token.clone(),
            network_health: OverallStatus::parse(&a.network_health),
            warnings: g.warnings.clone(),
            network_report: g.report.as_ref().map(|r| r.to_seed_json()),
            reused: g.reused,
        }
    }
}

/// The answer to a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Released {
    /// The allocation as it was when released.
    pub allocation: Allocation,
    /// When the port can go to another service.
    #[schema(format = DateTime)]
    pub quarantined_until: String,
}

impl From<&ReleasedPort> for Released {
    fn from(r: &ReleasedPort) -> Self {
        Self {
            allocation: Allocation::from(&r.allocation),
            quarantined_until: timestamp(r.quarantine_until_ms),
        }
    }
}
