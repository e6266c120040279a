//! Schemas of the network report JSON (rendered by the domain's own `to_seed_json`: the
//! report, stats and port exhaustion keep the field names of the original API). The types here
//! only describe that JSON for OpenAPI.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(as = CheckStatus)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CheckStatusDoc {
    Ok,
    Info,
    Warning,
    Critical,
}

/// One check: its status, its measured fields (named as in the original API), a note and,
/// when there is something useful to say, a recommendation.
#[derive(Serialize, ToSchema)]
#[schema(as = Check)]
#[allow(dead_code)]
pub struct CheckDoc {
    status: CheckStatusDoc,
    note: String,
    #[schema(required = false)]
    recommendation: String,
    #[schema(inline)]
    #[serde(flatten)]
    fields: HashMap<String, Value>,
}

/// The full diagnostic report.
#[derive(Serialize, ToSchema)]
#[schema(as = NetworkReport)]
#[allow(dead_code)]
pub struct ReportDoc {
    status: crate::network::OverallStatus,
    /// Names of the critical checks.
    critical_issues: Vec<String>,
    /// Names of the checks that warn.
    warnings: Vec<String>,
    /// Every check by name.
    checks: HashMap<String, CheckDoc>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = IoCounters)]
#[allow(dead_code)]
pub struct IoCountersDoc {
    bytes_sent: u64,
    bytes_recv: u64,
    packets_sent: u64,
    packets_recv: u64,
    errors_in: u64,
    errors_out: u64,
    drops_in: u64,
    drops_out: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = IoTotals)]
#[allow(dead_code)]
pub struct IoTotalsDoc {
    bytes_sent: u64,
    bytes_recv: u64,
    packets_sent: u64,
    packets_recv: u64,
    errors_in: u64,
    errors_out: u64,
    drops_in: u64,
    drops_out: u64,
    per_interface: HashMap<String, IoCountersDoc>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Connections)]
#[allow(dead_code)]
pub struct ConnectionsDoc {
    total: u64,
    /// TCP sockets by state (`ESTABLISHED`, `LISTEN`, `TIME_WAIT`, ...).
    by_status: HashMap<String, u64>,
    /// Where the counts came from (`netlink` or `proc`).
    #[schema(required = false)]
    source: String,
}

/// Network I/O counters and TCP connections by state.
#[derive(Serialize, ToSchema)]
#[schema(as = NetworkStats)]
#[allow(dead_code)]
pub struct StatsDoc {
    io: IoTotalsDoc,
    connections: ConnectionsDoc,
    /// What could not be read.
    #[schema(required = false)]
    errors: Vec<String>,
}

/// Ephemeral port usage.
#[derive(Serialize, ToSchema)]
#[schema(as = PortExhaustion)]
#[allow(dead_code)]
pub struct ExhaustionDoc {
    status: CheckStatusDoc,
    #[schema(required = false)]
    ephemeral_ports_used: u64,
    #[schema(required = false)]
    ephemeral_ports_total: u64,
    #[schema(required = false)]
    usage_percent: f64,
    #[schema(required = false)]
    recommendation: String,
    note: String,
    #[schema(inline)]
    #[serde(flatten)]
    fields: HashMap<String, Value>,
}
