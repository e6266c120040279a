//! The JSON of the REST paths: request bodies (unknown fields refused), replies, and the
//! schemas of the seed-shaped reports (rendered by the domain's own `to_seed_json`; the types
//! here only describe them for OpenAPI). Field names are snake_case, as in the seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ports::{Allocation, PortVerdict, RangeStatus};
use crate::wire;

/// Body of `POST /api/ports/allocations`. Only `service` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateBody {
    /// [A-Za-z0-9._-]{1,64}
    #[schema(
        example = "grace_backend",
        pattern = "^[A-Za-z0-9._-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub service: String,
    /// Free text, at most 256 bytes.
    #[schema(example = "Main Grace API server", max_length = 256)]
    pub purpose: Option<String>,
    /// Who started the service, at most 256 bytes.
    #[schema(max_length = 256)]
    pub started_by: Option<String>,
    /// Owning process; it must exist. The allocation is reclaimed when it exits.
    pub pid: Option<i32>,
    /// A specific port inside a managed range.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u32>,
    /// Lease length, 1 s to 30 days; renew before it runs out.
    #[schema(minimum = 1, maximum = 2592000)]
    pub ttl_seconds: Option<u64>,
    /// At most 16; keys [A-Za-z0-9._/-]{1,63}, values at most 256 bytes.
    pub labels: Option<BTreeMap<String, String>>,
    /// Over the Unix socket: the calling process becomes the owner.
    pub owner_is_caller: Option<bool>,
    /// Return the caller's own existing allocation of this service (token included) instead of
    /// a new port: same uid, same owning process, same kind of owner. Needs the Unix socket.
    pub reuse: Option<bool>,
    /// This port when it can be had now, else any free port. A port outside the managed ranges
    /// is never free: any port is handed out, and `warnings` says so. Not together with `port`.
    #[schema(minimum = 1, maximum = 65535)]
    pub prefer: Option<u32>,
    /// Where the port comes from: `service` (the default: the managed ranges) or `test` (the
    /// test pool, for test suites).
    pub pool: Option<PoolName>,
    /// A project port: the project's directory (absolute and canonical, at most 1024 bytes);
    /// `service` is then the port's name in the project. The port is remembered for (project,
    /// name) and comes back on every allocation of that name while nothing else holds it; the
    /// project's live allocation of the name is handed back (status 200).
    #[schema(example = "/home/alice/src/shop", max_length = 1024)]
    pub project: Option<String>,
}

/// The pool a port comes from.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PoolName {
    Service,
    Test,
}

impl From<PoolName> for crate::ports::Pool {
    fn from(p: PoolName) -> Self {
        match p {
            PoolName::Service => Self::Service,
            PoolName::Test => Self::Test,
        }
    }
}

/// Body of `POST /api/ports/allocations/{port}/renew` (optional: an empty body renews).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// New lease length; unset keeps the current one.
    #[schema(minimum = 1, maximum = 2592000)]
    pub ttl_seconds: Option<u64>,
    /// Added to the allocation's request counter.
    pub requests_delta: Option<u64>,
    /// Added to the allocation's error counter.
    pub errors_delta: Option<u64>,
    /// Allow `ttl_seconds` to turn an allocation without a TTL into a lease (refused otherwise).
    pub convert_to_lease: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the allocations of this service.
    pub service: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// Add the per-port checks (firewall probe, TIME_WAIT on the port) for this port.
    #[param(minimum = 1, maximum = 65535)]
    pub port: Option<u32>,
    /// Take a new system snapshot instead of the current one (at most 5 s old).
    pub fresh: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationList {
    pub allocations: Vec<wire::Allocation>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PortRange)]
pub struct RangeJson {
    pub start: u16,
    pub end: u16,
}

/// The watchdog's state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WatchdogStatus)]
pub struct WatchdogStatusJson {
    pub running: bool,
    /// Period of the pass.
    pub interval_seconds: f64,
    /// Passes completed since start-up.
    pub checks_performed: u64,
    /// Squatters, listeners gone, CLOSE_WAIT leaks, outside listeners, the network getting
    /// worse, since start-up.
    pub issues_detected: u64,
    /// Allocations reclaimed since start-up.
    pub reclaimed: u64,
    /// End of the last pass (RFC 3339).
    pub last_run: Option<String>,
    pub last_run_duration_ms: f64,
    /// Event watchers connected now (gRPC Watch and Server-Sent Events).
    pub subscribers: u64,
    /// The oldest sequence a stream can resume after.
    pub oldest_retained_sequence: u64,
    /// The newest event's sequence.
    pub last_sequence: u64,
    /// Overall network status at the last pass.
    pub network_status: String,
    /// Network I/O per second between the last two passes (`total` and per interface).
    #[schema(value_type = Option<Object>)]
    pub io_rates: Option<serde_json::Value>,
}

/// The port manager's summary.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PortsStatus)]
pub struct StatusJson {
    /// The managed ranges as text (`8000-8100`).
    #[schema(example = "8000-8100")]
    pub port_range: String,
    pub ranges: Vec<RangeJson>,
    /// Ports in the managed ranges.
    pub total: usize,
    pub allocated: usize,
    /// Free to hand out now.
    pub available: usize,
    /// Released recently; allocatable again after the quarantine.
    pub quarantined: usize,
    /// Not leased but unusable now (something else listens, or binding is refused).
    pub unavailable: usize,
    pub quarantine_seconds: u64,
    /// Ranges overlapping the kernel's ephemeral range.
    pub warnings: Vec<String>,
    /// The watchdog's summary.
    pub watchdog: WatchdogStatusJson,
    /// The daemon that answered.
    pub daemon: DaemonJson,
    /// The test pool; null when the daemon has none.
    pub test_pool: Option<TestPoolJson>,
}

/// The test pool's counts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TestPoolStatus)]
pub struct TestPoolJson {
    /// The pool as text (`15000-24999`).
    #[schema(example = "15000-24999")]
    pub port_range: String,
    pub total: usize,
    pub allocated: usize,
    pub available: usize,
    /// Released, with a socket the kernel still holds on the port (TIME_WAIT included).
    pub resting: usize,
    pub unavailable: usize,
}

impl From<RangeStatus> for TestPoolJson {
    fn from(t: RangeStatus) -> Self {
        Self {
            port_range: t.ranges.to_string(),
            total: t.total,
            allocated: t.allocated,
            available: t.available,
            resting: t.quarantined,
            unavailable: t.unavailable,
        }
    }
}

/// The daemon: version, start, listeners, state file.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Daemon)]
pub struct DaemonJson {
    #[schema(example = "0.1.0")]
    pub version: String,
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
    /// `127.0.0.1:7070`, `unix:/run/portwarden/portwarden.sock`.
    pub listeners: Vec<String>,
    pub state_path: String,
}

impl From<&crate::daemon_info::DaemonInfo> for DaemonJson {
    fn from(d: &crate::daemon_info::DaemonInfo) -> Self {
        Self {
            version: d.version.to_string(),
            pid: d.pid,
            started_at: wire::timestamp(d.started_at_ms),
            listeners: d.listeners(),
            state_path: d.state_path.display().to_string(),
        }
    }
}

impl StatusJson {
    pub fn new(
        s: RangeStatus,
        test_pool: Option<RangeStatus>,
        watchdog: &crate::watchdog::WatchdogStatus,
        daemon: &crate::daemon_info::DaemonInfo,
    ) -> Self {
        Self {
            port_range: s.ranges.to_string(),
            ranges: s
                .ranges
                .ranges()
                .iter()
                .map(|r| RangeJson {
                    start: r.start,
                    end: r.end,
                })
                .collect(),
            total: s.total,
            allocated: s.allocated,
            available: s.available,
            quarantined: s.quarantined,
            unavailable: s.unavailable,
            quarantine_seconds: s.quarantine.as_secs(),
            warnings: s.warnings,
            watchdog: WatchdogStatusJson::new(watchdog),
            daemon: DaemonJson::from(daemon),
            test_pool: test_pool.map(TestPoolJson::from),
        }
    }
}

/// One allocated port: what its owner was last seen doing, and the free check's verdict.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PortHealth)]
pub struct PortHealthJson {
    pub service: String,
    pub health: crate::ports::Health,
    /// The free check's verdict: `port`, `state`, `holder`, `reason`, `in_managed_range`.
    #[serde(flatten)]
    pub check: wire::PortCheck,
}

impl PortHealthJson {
    pub fn new(a: &Allocation, v: &PortVerdict) -> Self {
        Self {
            service: a.service.clone(),
            health: a.health,
            check: wire::PortCheck::from(v),
        }
    }
}

/// Health of every allocated port.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthCheck)]
pub struct HealthCheckJson {
    pub total: usize,
    /// How many allocations are in each health state.
    pub by_health: BTreeMap<String, usize>,
    pub ports: Vec<PortHealthJson>,
}
