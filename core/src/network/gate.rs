//! The pre-allocation gate: what the allocator asks before it hands out a port. It keeps one
//! system-wide snapshot (reused while younger than `snapshot_max_age_ms`, refreshed on a
//! background thread once it is half that old, so allocations under load never wait for it) and
//! runs the cheap per-port checks for each candidate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::check::CheckStatus;
use super::firewall::{self, PortFinding};
use super::notices::HostNotices;
use super::{
    assemble_report, port_checks, port_checks_probed, system_snapshot, system_snapshot_watching,
    NetworkConfig, Report, SystemSnapshot,
};

/// A check the daemon adds to every snapshot (the state's storage, which only it knows).
pub type ExtraCheck = Box<dyn Fn() -> super::CheckResult + Send + Sync>;

pub struct NetworkGate {
    cfg: NetworkConfig,
    extra: Mutex<Vec<ExtraCheck>>,
    current: Mutex<Option<Arc<SystemSnapshot>>>,
    refreshing: AtomicBool,
    /// Host-wide findings as last logged: each is logged when it appears and when it clears.
    notices: HostNotices,
}

impl NetworkGate {
    pub fn new(cfg: NetworkConfig) -> Self {
        Self {
            cfg,
            extra: Mutex::new(Vec::new()),
            current: Mutex::new(None),
            refreshing: AtomicBool::new(false),
            notices: HostNotices::default(),
        }
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.cfg.thresholds.snapshot_max_age_ms)
    }

    fn cached(&self) -> Option<Arc<SystemSnapshot>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the current snapshot: the next one needed is taken anew (something it reports
    /// changed).
    pub fn invalidate(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Adds a check to every snapshot from now on.
    pub fn add_check(&self, check: ExtraCheck) {
        self.extra
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(check);
    }

    fn store(&self, mut snap: SystemSnapshot) -> Arc<SystemSnapshot> {
        for check in self.extra.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            snap.checks.push(check());
        }
        self.notices.note(&snap.checks, &self.cfg.blocking);
        let snap = Arc::new(snap);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
        snap
    }

    /// The snapshot taken last, however old (None before the first): for reports that must not
    /// take one.
    pub fn latest(&self) -> Option<Arc<SystemSnapshot>> {
        self.cached()
    }

    /// Whether [`NetworkGate::snapshot`] would answer from the cache, without taking a new
    /// snapshot (which reads /proc, dumps the socket table and resolves names: up to the DNS
    /// timeout).
    pub fn is_fresh(&self) -> bool {
        self.cached().is_some_and(|s| s.age() <= self.max_age())
    }

    /// A snapshot no older than the max age: the cached one, or one taken now (the first call,
    /// or after the daemon sat idle). Past half its age a background refresh is started.
    pub fn snapshot(self: &Arc<Self>) -> Arc<SystemSnapshot> {
        match self.cached() {
            Some(snap) if snap.age() <= self.max_age() => {
                if snap.age() > self.max_age() / 2 && !self.refreshing.swap(true, Ordering::AcqRel)
                {
                    let gate = Arc::clone(self);
                    let spawned = std::thread::Builder::new()
                        .name("portwarden-snapshot".into())
                        .spawn(move || {
                            gate.store(system_snapshot(&gate.cfg));
                            gate.refreshing.store(false, Ordering::Release);
                        });
                    if spawned.is_err() {
                        self.refreshing.store(false, Ordering::Release);
                    }
                }
                snap
            }
            _ => self.store(system_snapshot(&self.cfg)),
        }
    }

    /// A fresh snapshot, taken now, whose census also keeps the sockets of each port of
    /// `watch`; it becomes the snapshot allocations use (the watchdog's pass refreshes it).
    pub fn refresh_watching(&self, watch: &[u16]) -> Arc<SystemSnapshot> {
        self.store(system_snapshot_watching(&self.cfg, watch))
    }

    /// The full report (what `/network/health` answers): the system-wide checks of the current
    /// snapshot, or of a new one when `fresh` (which then becomes the current one), plus the
    /// per-port checks of `port`. Blocking when a snapshot has to be taken; see
    /// [`NetworkGate::is_fresh`].
    pub fn report(self: &Arc<Self>, port: Option<u16>, fresh: bool) -> Report {
        let started = Instant::now();
        let snap = if fresh {
            self.store(system_snapshot(&self.cfg))
        } else {
            self.snapshot()
        };
        let per_port = port
            .map(|port| port_checks(&self.cfg, &snap, port))
            .unwrap_or_default();
        let report = assemble_report(&snap, per_port, started);
        tracing::debug!(
            status = report.status.as_str(),
            critical = ?report.critical_issues,
            warnings = ?report.warnings,
            fresh,
            "network report"
        );
        report
    }

    /// The per-port checks for `port` on top of `snap`, plus what they say about the port
    /// itself. The report is compact: the port's own checks and every system-wide check that
    /// found something (warning or critical); the clean ones are left out, so its status and
    /// issue lists are the full report's, without copying a dozen checks per allocation.
    pub fn check_port(&self, snap: &SystemSnapshot, port: u16) -> (Report, PortFinding) {
        let started = Instant::now();
        let probe = firewall::probe(port);
        let finding = probe.finding();
        let checks = port_checks_probed(&self.cfg, snap, &probe);
        let mut compact: Vec<_> = snap
            .checks
            .iter()
            .filter(|c| {
                c.status >= CheckStatus::Warning && !checks.iter().any(|p| p.name == c.name)
            })
            .cloned()
            .collect();
        compact.extend(checks);
        (Report::from_checks(compact, started.elapsed()), finding)
    }

    /// Whether a critical finding of check `name` refuses allocation (`blocking_checks`).
    pub fn blocks(&self, name: &str) -> bool {
        self.cfg.blocking.contains(name)
    }

    /// The system-wide checks of `snap` as a report, with the names of the blocking checks,
    /// when a blocking check is critical (None: nothing refuses allocation). Other critical
    /// findings do not refuse; they come back with the allocation.
    pub fn refusal(&self, snap: &SystemSnapshot) -> Option<(Report, Vec<String>)> {
        (!self.cfg.blocking.refusing(&snap.checks).is_empty()).then(|| {
            (
                Report::from_checks(snap.checks.clone(), snap.duration),
                self.cfg.blocking.names(),
            )
        })
    }
}

/// "time_wait_sockets: 15 TIME_WAIT connections" for every warning and critical check.
pub fn findings(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.status >= CheckStatus::Warning)
        .map(|c| format!("{}: {}", c.name, c.note))
        .collect()
}
