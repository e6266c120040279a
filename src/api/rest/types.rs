//! The JSON of the REST paths: request bodies (unknown fields refused), replies, and the
//! schemas of the seed-shaped reports (rendered by the domain's own `to_seed_json`; the types
//! here only describe them for OpenAPI). Field names are snake_case, as in the seed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::ports::{Allocation, Health, OwnerKind, PortVerdict, PortVerdictState, RangeStatus};

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

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = Health)]
#[serde(rename_all = "snake_case")]
pub enum HealthJson {
    Allocated,
    Active,
    Unhealthy,
    Dead,
}

impl From<Health> for HealthJson {
    fn from(h: Health) -> Self {
        match h {
            Health::Allocated => HealthJson::Allocated,
            Health::Active => HealthJson::Active,
            Health::Unhealthy => HealthJson::Unhealthy,
            Health::Dead => HealthJson::Dead,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = OwnerKind)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKindJson {
    Permanent,
    Process,
    Lease,
    ProcessAndLease,
}

impl From<OwnerKind> for OwnerKindJson {
    fn from(k: OwnerKind) -> Self {
        match k {
            OwnerKind::Permanent => OwnerKindJson::Permanent,
            OwnerKind::Process => OwnerKindJson::Process,
            OwnerKind::Lease => OwnerKindJson::Lease,
            OwnerKind::ProcessAndLease => OwnerKindJson::ProcessAndLease,
        }
    }
}

pub use crate::ports::rfc3339;

/// One allocation and everything recorded about it (never its lease token).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Allocation)]
pub struct AllocationJson {
    pub port: u16,
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    /// Owning process, null when none.
    pub pid: Option<i32>,
    /// Start time of the owning process in clock ticks since boot (catches PID reuse).
    pub pid_start_time: Option<u64>,
    /// uid that allocated over the Unix socket; null when unknown (TCP).
    pub owner_uid: Option<u32>,
    pub labels: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub allocated_at: String,
    #[schema(format = DateTime)]
    pub renewed_at: Option<String>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub health: HealthJson,
    pub owner_kind: OwnerKindJson,
    pub request_count: u64,
    pub error_count: u64,
    /// Overall network status of the checks run before allocation.
    pub network_health: String,
    /// What the watchdog saw at its last pass; null before the first.
    pub observed: Option<ObservedJson>,
}

/// One watchdog pass's view of an allocated port.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Observation)]
pub struct ObservedJson {
    #[schema(format = DateTime)]
    pub at: String,
    /// `nobody`, `owner`, `unverified` (someone listens; the owner is unknown or unreadable) or
    /// `squatter`.
    pub listener: String,
    /// The processes listening instead of the owner ("pid 12 (nc)").
    pub squatters: Vec<String>,
    /// Sockets on the port by TCP state, listeners excluded.
    pub connections: BTreeMap<String, u64>,
    /// The owning process as last seen.
    pub process: Option<ProcessJson>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProcessStats)]
pub struct ProcessJson {
    pub name: String,
    pub cmdline: String,
    pub rss_bytes: u64,
    /// CPU use since the previous pass, percent of one core.
    pub cpu_percent: f32,
}

impl From<&crate::ports::Observation> for ObservedJson {
    fn from(o: &crate::ports::Observation) -> Self {
        use crate::ports::Listener;
        let (listener, squatters) = match &o.listener {
            Listener::Nobody => ("nobody", Vec::new()),
            Listener::Owner => ("owner", Vec::new()),
            Listener::Unverified => ("unverified", Vec::new()),
            Listener::Squatters(h) => ("squatter", h.iter().map(ToString::to_string).collect()),
        };
        Self {
            at: rfc3339(o.at_ms),
            listener: listener.into(),
            squatters,
            connections: o.connections.clone(),
            process: o.process.as_ref().map(|p| ProcessJson {
                name: p.name.clone(),
                cmdline: p.cmdline.clone(),
                rss_bytes: p.rss_bytes,
                cpu_percent: p.cpu_percent,
            }),
        }
    }
}

impl From<&Allocation> for AllocationJson {
    fn from(a: &Allocation) -> Self {
        Self {
            port: a.port,
            service: a.service.clone(),
            purpose: a.purpose.clone(),
            started_by: a.started_by.clone(),
            pid: a.pid(),
            pid_start_time: a.owner.as_ref().map(|o| o.start_time),
            owner_uid: a.owner_uid,
            labels: a.labels.clone(),
            allocated_at: rfc3339(a.allocated_at_ms),
            renewed_at: a.renewed_at_ms.map(rfc3339),
            expires_at: a.expires.map(|d| rfc3339(d.wall_ms)),
            ttl_seconds: a.ttl_seconds,
            health: a.health.into(),
            owner_kind: a.owner_kind().into(),
            request_count: a.request_count,
            error_count: a.error_count,
            network_health: a.network_health.clone(),
            observed: a.observed.as_ref().map(ObservedJson::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationList {
    pub allocations: Vec<AllocationJson>,
}

/// The reply to an allocation (HTTP 201; 200 when `reuse` handed back an existing one).
#[derive(Debug, Serialize, ToSchema)]
pub struct Allocated {
    pub allocation: AllocationJson,
    /// Needed to release or renew (`X-Lease-Token`), unless the caller is root or the same uid
    /// over the Unix socket.
    pub lease_token: String,
    /// Overall status of the pre-allocation network checks.
    pub network_health: String,
    /// One line each: a `prefer` port that could not be had because it is outside the managed
    /// ranges, then the warnings of those checks.
    pub warnings: Vec<String>,
    /// Those checks in full; null when the daemon runs none.
    #[schema(value_type = Option<ReportDoc>)]
    pub network_report: Option<Value>,
    /// True when `reuse` returned an existing allocation (no network checks ran: the report is
    /// null and the warnings empty).
    pub reused: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Released)]
pub struct ReleasedJson {
    /// The allocation as it was when released.
    pub allocation: AllocationJson,
    /// When the port can go to another service.
    #[schema(format = DateTime)]
    pub quarantined_until: String,
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
            started_at: rfc3339(d.started_at_ms),
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

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = PortState)]
#[serde(rename_all = "snake_case")]
pub enum PortStateJson {
    Free,
    Allocated,
    Quarantined,
    InUse,
    Blocked,
    OutsideRange,
    /// The daemon could not probe it now (out of descriptors or memory).
    Unknown,
}

impl From<PortVerdictState> for PortStateJson {
    fn from(s: PortVerdictState) -> Self {
        match s {
            PortVerdictState::Free => PortStateJson::Free,
            PortVerdictState::Allocated => PortStateJson::Allocated,
            PortVerdictState::Quarantined => PortStateJson::Quarantined,
            PortVerdictState::InUse => PortStateJson::InUse,
            PortVerdictState::Blocked => PortStateJson::Blocked,
            PortVerdictState::OutsideRange => PortStateJson::OutsideRange,
            PortVerdictState::Unknown => PortStateJson::Unknown,
        }
    }
}

/// One allocated port: what its owner was last seen doing, and the free check's verdict.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PortHealth)]
pub struct PortHealthJson {
    pub port: u16,
    pub service: String,
    pub health: HealthJson,
    pub state: PortStateJson,
    pub reason: String,
    pub in_managed_range: bool,
    /// Who holds the port: "service S (pid N)", or the outside process when the caller may know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

impl PortHealthJson {
    pub fn new(a: &Allocation, v: &PortVerdict) -> Self {
        Self {
            port: a.port,
            service: a.service.clone(),
            health: a.health.into(),
            state: v.state.into(),
            reason: v.reason.clone(),
            in_managed_range: v.in_managed_range,
            holder: v.holder.clone(),
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

// Schemas of the seed-shaped JSON rendered by the domain (`Report::to_seed_json`,
// `IoStats::to_seed_json`, `CheckResult::to_seed_json`).

#[derive(Serialize, ToSchema)]
#[schema(as = OverallStatus)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum OverallStatusDoc {
    Healthy,
    Warning,
    Critical,
}

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
    status: OverallStatusDoc,
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
