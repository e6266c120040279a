//! The watchdog: the daemon's one observer. Two loops share the work:
//!
//! - the **reaper** (every second) reclaims allocations whose owner is certainly gone (process
//!   exited, PID reused, host rebooted, lease expired): fast, and each rule is certain;
//! - the **pass** (every `watchdog_interval`, 30 s by default, and once at start-up) looks at
//!   everything else: who listens on each allocated port (squatters), connections by state
//!   (CLOSE_WAIT leaks), the owners' processes (sysinfo), listeners on free ports of the range,
//!   the network diagnostics and I/O rates. Its findings move health and become events; none
//!   of them frees a port.
//!
//! Domain code: no transport types. Blocking work runs on the blocking pool.

mod owners;
mod pass;
mod processes;
mod rates;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::events::Holder;
use crate::network::NetworkGate;
use crate::ports::Allocator;

pub use owners::{held_by_owner, FdTables, OwnerCheck};
pub use processes::ProcessMonitor;
pub use rates::{IoRate, IoRates, RateMeter};

/// How often the reaper looks for dead owners.
pub const REAP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
pub struct WatchdogConfig {
    /// Period of the pass (the seed's 30 s).
    pub interval: Duration,
    /// Events kept in the log, at most.
    pub events_keep: u64,
    /// Events older than this are dropped from the log.
    pub events_max_age: Duration,
}

/// A week of history at the default interval: "who had port 8042 yesterday" has an answer,
/// and 100,000 events stay under ~30 MB on disk.
pub const DEFAULT_EVENTS_KEEP: u64 = 100_000;
pub const DEFAULT_EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            events_keep: DEFAULT_EVENTS_KEEP,
            events_max_age: DEFAULT_EVENTS_MAX_AGE,
        }
    }
}

/// Upper bounds (seconds) of the pass-duration histogram's buckets.
pub const PASS_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How long passes took: counts per bucket of [`PASS_BUCKETS`] (not cumulative), their sum.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PassDurations {
    pub counts: [u64; PASS_BUCKETS.len()],
    pub sum_seconds: f64,
    pub count: u64,
}

impl PassDurations {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = PASS_BUCKETS.iter().position(|le| seconds <= *le) {
            self.counts[i] += 1;
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }

    /// (upper bound, count in that bucket alone) pairs, ending with +Inf: what the metrics
    /// encoder takes (it accumulates them).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = PASS_BUCKETS.iter().copied().zip(self.counts).collect();
        let finite: u64 = self.counts.iter().sum();
        out.push((f64::INFINITY, self.count - finite));
        out
    }
}

/// What the watchdog reports about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WatchdogStatus {
    pub running: bool,
    pub interval: Duration,
    pub passes: u64,
    /// Wall time of the last pass's end (ms since the epoch).
    pub last_pass_at_ms: Option<i64>,
    pub last_pass_duration_ms: f64,
    pub issues_detected: u64,
    pub reclaimed: u64,
    pub watchers: u64,
    pub oldest_retained_sequence: u64,
    pub last_sequence: u64,
    /// Owner checks that could not read the owner's process (kept, never reclaimed).
    pub unknown_owner_checks: u64,
    /// Overall network status at the last pass (healthy, warning, critical).
    pub network_status: String,
    pub rates: Option<IoRates>,
    pub pass_durations: PassDurations,
}

/// What one pass remembers for the next.
#[derive(Default)]
struct PassMemory {
    processes: Option<ProcessMonitor>,
    rates: RateMeter,
    /// Free ports of the range with an outside listener, as last reported.
    outside: BTreeMap<u16, Vec<Holder>>,
    /// The network checks' statuses at the last pass, and the overall status.
    network: Option<(String, HashMap<String, String>)>,
    /// Who listens on each allocated port, while its listening sockets do not change.
    listeners: pass::ListenerCache,
}

pub struct Watchdog {
    cfg: WatchdogConfig,
    allocator: Arc<Allocator>,
    gate: Arc<NetworkGate>,
    memory: Mutex<PassMemory>,
    status: Mutex<WatchdogStatus>,
    running: AtomicBool,
    /// Ticks after every reaper round that succeeded: lets a supervisor (systemd's watchdog)
    /// hear that the loop is alive.
    heartbeat: watch::Sender<u64>,
}

impl Watchdog {
    pub fn new(cfg: WatchdogConfig, allocator: Arc<Allocator>, gate: Arc<NetworkGate>) -> Self {
        let status = WatchdogStatus {
            interval: cfg.interval,
            ..Default::default()
        };
        Self {
            cfg,
            allocator,
            gate,
            memory: Mutex::default(),
            status: Mutex::new(status),
            running: AtomicBool::new(false),
            heartbeat: watch::channel(0).0,
        }
    }

    pub fn config(&self) -> &WatchdogConfig {
        &self.cfg
    }

    /// Ticks once per successful reaper round.
    pub fn heartbeat(&self) -> watch::Receiver<u64> {
        self.heartbeat.subscribe()
    }

    pub fn status(&self) -> WatchdogStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        s.running = self.running.load(Ordering::Acquire);
        let totals = self.allocator.counters();
        s.reclaimed = totals.reclaimed_total();
        s.watchers = self.allocator.watchers() as u64;
        let log = self.allocator.log_bounds();
        s.oldest_retained_sequence = log.oldest_retained();
        s.last_sequence = log.last;
        s.unknown_owner_checks = self.allocator.unknown_owner_checks();
        s
    }

    /// Runs both loops until `stop` turns true. The first pass runs at once.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        self.running.store(true, Ordering::Release);
        tracing::info!(
            "Watchdog: Active (monitors health every {})",
            human_interval(self.cfg.interval)
        );
        let reaper = tokio::spawn(self.clone().reap_loop(stop.clone()));
        let passes = tokio::spawn(self.clone().pass_loop(stop));
        let _ = tokio::join!(reaper, passes);
        self.running.store(false, Ordering::Release);
    }

    async fn reap_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(REAP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let a = self.allocator.clone();
            let swept = tokio::task::spawn_blocking(move || {
                let swept = a.sweep();
                a.write_marker();
                a.probe_storage();
                swept
            });
            match swept.await {
                Ok(Ok(_)) => {
                    self.heartbeat.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(Err(e)) => tracing::error!(error = %e, "reaper: sweep failed"),
                Err(e) => tracing::error!(error = %e, "reaper: task failed"),
            }
        }
    }

    async fn pass_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.pass()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "watchdog pass failed"),
                Err(e) => tracing::error!(error = %e, "watchdog pass task failed"),
            }
        }
    }
}

/// "30s", "1m30s", "500ms".
fn human_interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
