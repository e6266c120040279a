//! Network diagnostics: the checks portwarden runs before it hands out a port and on demand
//! (`/network/health`, `/network/stats`, `/network/port-exhaustion`, `/network/ssl-readiness`).
//!
//! Pure domain code: no transport types. Every check returns a [`CheckResult`]; a [`Report`]
//! derives the overall status from them. The system-wide part ([`system_snapshot`]) can be cached
//! by the allocator for a few seconds and combined with the cheap per-port part ([`port_checks`]).
//! All functions are blocking; call them from `spawn_blocking`.
//!
//! One file per family of checks:
//! - [`stack`]: IPv4/IPv6 availability, socket options
//! - [`descriptors`]: RLIMIT_NOFILE and descriptor use
//! - [`interfaces`]: interfaces and loopback
//! - [`firewall`]: probe bind on a port
//! - [`gate`]: the pre-allocation gate (cached snapshot + per-port checks)
//! - [`blocking`]: which critical findings refuse an allocation (`blocking_checks`)
//! - [`notices`]: host-wide findings logged when they appear and when they clear
//! - [`census`]: the TCP socket table (sock_diag netlink, /proc fallback)
//! - [`connections`]: TIME_WAIT and connection counts
//! - [`exhaustion`]: ephemeral port usage
//! - [`dns`]: name resolution with a timeout
//! - [`tls`]: certificate/key readiness
//! - [`overflows`]: listen queue overflows
//! - [`io_stats`]: interface counters for `/network/stats`

pub mod blocking;
pub mod census;
pub mod check;
pub mod connections;
pub mod descriptors;
pub mod dns;
#[cfg(windows)]
pub mod dynamic_ports;
pub mod exhaustion;
pub mod firewall;
pub mod gate;
pub mod interfaces;
pub mod io_stats;
pub mod notices;
pub mod overflows;
pub mod procfs;
pub mod report;
pub mod stack;
pub mod storage;
pub mod thresholds;
pub mod tls;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use blocking::BlockingChecks;
pub use census::{
    holders_by_inode, is_loopback, listener_holders, listeners_on, listening_ports, peer_uid,
    processes_holding, take_census, take_census_watching, CensusError, CensusRequest, CensusSource,
    LoopbackPeer, PortSockets, ProcessInfo, SocketCensus, StateSet, TcpState,
};
pub use check::{names, CheckResult, CheckStatus};
pub use exhaustion::port_exhaustion;
pub use firewall::PortFinding;
pub use gate::NetworkGate;
pub use io_stats::{interface_counters, io_stats, IoCounters, IoStats};
pub use report::{OverallStatus, Report};
pub use thresholds::{ThresholdSpec, Thresholds};
pub use tls::tls_readiness;

/// Configuration of the diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub thresholds: Thresholds,
    /// PEM certificate chain (leaf first); `None` with `tls_key` `None` means TLS not configured.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Wall-time budget of a full report (default 2 s). Only DNS can take long; it is cut off at
    /// the budget.
    pub budget: Duration,
    /// Longest wait for DNS lookups (default 1 s), within the budget.
    pub dns_timeout: Duration,
    /// The checks whose critical finding refuses allocations (`blocking_checks`).
    pub blocking: BlockingChecks,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            thresholds: Thresholds::default(),
            tls_cert: None,
            tls_key: None,
            budget: Duration::from_secs(2),
            dns_timeout: Duration::from_secs(1),
            blocking: BlockingChecks::default(),
        }
    }
}

/// The system-wide part of a report, reusable for a few seconds by per-port checks.
#[derive(Debug, Clone)]
pub struct SystemSnapshot {
    pub taken_at: Instant,
    /// System-wide checks, in report order.
    pub checks: Vec<CheckResult>,
    /// The full socket census (or why it could not be taken).
    pub census: Result<SocketCensus, String>,
    /// net.ipv4.tcp_max_tw_buckets (or why it could not be read).
    pub tcp_max_tw_buckets: Result<u64, String>,
    pub duration: Duration,
}

impl SystemSnapshot {
    pub fn age(&self) -> Duration {
        self.taken_at.elapsed()
    }

    /// Whether the snapshot is young enough to be reused (`snapshot_max_age_ms`).
    pub fn is_fresh(&self, thresholds: &Thresholds) -> bool {
        self.age() <= Duration::from_millis(thresholds.snapshot_max_age_ms)
    }
}

/// Runs the system-wide checks. DNS runs on a helper thread during the other checks and is cut
/// off at `min(dns_timeout, budget)`.
pub fn system_snapshot(cfg: &NetworkConfig) -> SystemSnapshot {
    system_snapshot_watching(cfg, &[])
}

/// [`system_snapshot`] whose census also keeps the sockets of each port of `watch` (the
/// watchdog's view of the managed ports), from the same walk of the socket table.
pub fn system_snapshot_watching(cfg: &NetworkConfig, watch: &[u16]) -> SystemSnapshot {
    let started = Instant::now();
    let dns = dns::DnsProbe::start();
    let thresholds = &cfg.thresholds;

    let census = take_census_watching(CensusRequest::FULL, watch).map_err(|error| {
        tracing::warn!(%error, "socket census failed");
        error.to_string()
    });
    #[cfg(not(windows))]
    let tcp_max_tw_buckets =
        procfs::read_number(procfs::TCP_MAX_TW_BUCKETS).map_err(|error| error.to_string());
    #[cfg(windows)]
    let tcp_max_tw_buckets: Result<u64, String> =
        Err("Windows has no TIME_WAIT bucket limit".into());
    let port_range = procfs::ip_local_port_range().map_err(|error| error.to_string());
    let census_ref = census.as_ref().map_err(String::as_str);

    let mut checks = vec![
        stack::ipv4_available(),
        stack::ipv6_available(),
        stack::socket_reuse(),
        descriptors::file_descriptors(thresholds),
        interfaces::network_interfaces(),
        connections::time_wait_sockets(
            census_ref,
            None,
            tcp_max_tw_buckets.as_ref().copied().map_err(String::as_str),
            thresholds,
        ),
        connections::connection_limits(census_ref, thresholds),
    ];
    let exhaustion = exhaustion::port_exhaustion_from(
        census_ref,
        port_range.as_ref().copied().map_err(String::as_str),
        thresholds,
    );
    let tls = tls::tls_readiness(cfg);
    let overflows = overflows::listen_overflows(thresholds);
    let dns_deadline = started
        + cfg
            .dns_timeout
            .min(cfg.budget.saturating_sub(Duration::from_millis(50)));
    checks.push(dns.finish(dns_deadline, thresholds));
    checks.extend([exhaustion, tls, overflows]);

    SystemSnapshot {
        taken_at: started,
        checks,
        census,
        tcp_max_tw_buckets,
        duration: started.elapsed(),
    }
}

/// The per-port checks: a fresh firewall probe of `port`, and TIME_WAIT on the port from the
/// snapshot's census (so no socket-table walk: well under 2 ms however many sockets exist; the
/// TIME_WAIT figure is as old as the snapshot).
pub fn port_checks(cfg: &NetworkConfig, snapshot: &SystemSnapshot, port: u16) -> Vec<CheckResult> {
    port_checks_probed(cfg, snapshot, &firewall::probe(port))
}

/// [`port_checks`] with the probe already taken (the allocator's gate also needs its verdict).
pub fn port_checks_probed(
    cfg: &NetworkConfig,
    snapshot: &SystemSnapshot,
    probe: &firewall::PortProbe,
) -> Vec<CheckResult> {
    let mut time_wait = connections::time_wait_sockets(
        snapshot.census.as_ref().map_err(String::as_str),
        Some(probe.port),
        snapshot
            .tcp_max_tw_buckets
            .as_ref()
            .copied()
            .map_err(String::as_str),
        &cfg.thresholds,
    );
    time_wait.set_field(
        "snapshot_age_ms",
        check::round1(snapshot.age().as_secs_f64() * 1000.0),
    );
    vec![probe.check(), time_wait]
}

/// Combines a snapshot with per-port checks: a per-port check replaces the snapshot's check of
/// the same name (TIME_WAIT), others are inserted after `network_interfaces` as in the seed.
pub fn assemble_report(
    snapshot: &SystemSnapshot,
    port_checks: Vec<CheckResult>,
    started: Instant,
) -> Report {
    let mut checks = snapshot.checks.clone();
    for check in port_checks {
        if let Some(existing) = checks
            .iter_mut()
            .find(|existing| existing.name == check.name)
        {
            *existing = check;
        } else {
            let at = checks
                .iter()
                .position(|existing| existing.name == names::NETWORK_INTERFACES)
                .map_or(checks.len(), |index| index + 1);
            checks.insert(at, check);
        }
    }
    Report::from_checks(checks, started.elapsed())
}

/// A full, fresh report; with `port`, the per-port checks for it are included.
pub fn run_report(cfg: &NetworkConfig, port: Option<u16>) -> Report {
    let started = Instant::now();
    let snapshot = system_snapshot(cfg);
    let per_port = port
        .map(|port| port_checks(cfg, &snapshot, port))
        .unwrap_or_default();
    let report = assemble_report(&snapshot, per_port, started);
    tracing::debug!(
        status = report.status.as_str(),
        critical = ?report.critical_issues,
        warnings = ?report.warnings,
        duration_ms = report.duration_ms,
        "network report"
    );
    report
}
