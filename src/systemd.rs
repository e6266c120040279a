//! Talking to systemd (`Type=notify`): READY once the daemon serves, STATUS lines an operator
//! reads in `systemctl status`, watchdog pings while the daemon's own periodic loop is healthy,
//! STOPPING on shutdown. Without `NOTIFY_SOCKET` (not started by systemd) every call is a no-op.
//!
//! The watchdog ping is driven by whoever calls [`Notifier::loop_healthy`] after each good pass
//! of a periodic loop; it pings at most every `WATCHDOG_USEC / 2`, so a loop that stalls or keeps
//! failing stops the pings and systemd restarts the daemon.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
#[cfg(not(unix))]
mod sd_notify {
    //! There is no systemd off Unix: the notifier is never enabled there, so nothing is sent.
    #[allow(dead_code)]
    pub enum NotifyState<'a> {
        Ready,
        Status(&'a str),
        Watchdog,
        Stopping,
    }
    pub fn watchdog_enabled(_: bool, _: &mut u64) -> bool {
        false
    }
    pub fn notify(_: bool, _: &[NotifyState]) -> std::io::Result<()> {
        Ok(())
    }
}
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::network::{NetworkGate, Report};
use crate::ports::{Allocator, RangeSet};
use crate::watchdog::Watchdog;

/// How often the STATUS line is refreshed (allocation count and network status).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// The daemon's side of the sd_notify protocol.
#[derive(Debug, Default)]
pub struct Notifier {
    /// False when `NOTIFY_SOCKET` is unset: nothing is sent.
    enabled: bool,
    /// Half of `WATCHDOG_USEC` (when the watchdog is on for this process).
    ping_every: Option<Duration>,
    last_ping: Mutex<Option<Instant>>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (the environment is left as it
    /// is: changing it in a threaded process is unsound, and the daemon starts no children).
    pub fn from_env() -> Self {
        let enabled =
            cfg!(unix) && std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let mut usec = 0;
        let ping_every = (enabled && sd_notify::watchdog_enabled(false, &mut usec) && usec > 0)
            .then(|| Duration::from_micros(usec) / 2);
        Self {
            enabled,
            ping_every,
            last_ping: Mutex::new(None),
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Half of `WATCHDOG_USEC`: the longest gap between two pings (None: no watchdog).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.ping_every
    }

    /// The daemon serves: listeners are up and the first network snapshot is taken.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// Called by a periodic loop after each successful pass: pings the watchdog when half of
    /// `WATCHDOG_USEC` has passed since the last ping. A small slack (a tenth of the interval)
    /// absorbs the loop's jitter, so a loop ticking exactly at the interval pings every tick
    /// instead of every other one.
    pub fn loop_healthy(&self) {
        let Some(every) = self.ping_every else {
            return;
        };
        let now = Instant::now();
        {
            let mut last = self.last_ping.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now.duration_since(t) + every / 10 < every) {
                return;
            }
            *last = Some(now);
        }
        self.send(&[NotifyState::Watchdog]);
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
        }
    }
}

/// "3 allocations in 8000-8100; network healthy" (with the failing checks when not healthy).
pub fn status_line(allocations: usize, ranges: &RangeSet, network: &Report) -> String {
    let noun = if allocations == 1 {
        "allocation"
    } else {
        "allocations"
    };
    let mut line = format!(
        "{allocations} {noun} in {ranges}; network {}",
        network.status.as_str()
    );
    let issues: Vec<&str> = network
        .critical_issues
        .iter()
        .chain(&network.warnings)
        .map(String::as_str)
        .collect();
    if !issues.is_empty() {
        line += &format!(
            " ({} critical, {} warnings: {})",
            network.critical_issues.len(),
            network.warnings.len(),
            issues.join(", ")
        );
    }
    line
}

/// Waits for the watchdog's first pass (listeners up, first network snapshot taken), then sends
/// READY with a STATUS line and refreshes STATUS every [`STATUS_INTERVAL`] from what the last
/// pass saw (no snapshot is taken for it). Pings systemd's watchdog after every reaper round
/// that succeeded. Returns at once when systemd is not listening.
pub fn announce(
    notifier: Arc<Notifier>,
    watchdog: Arc<Watchdog>,
    allocator: Arc<Allocator>,
    ranges: RangeSet,
    gate: Arc<NetworkGate>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !notifier.is_enabled() {
            return;
        }
        let mut beat = watchdog.heartbeat();
        let mut tick = tokio::time::interval(STATUS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ready = false;
        loop {
            tokio::select! {
                changed = beat.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    notifier.loop_healthy();
                    // The first pass runs at start-up: ready as soon as it is done.
                    if ready || watchdog.status().passes == 0 {
                        continue;
                    }
                }
                _ = tick.tick() => {
                    if !ready {
                        continue;
                    }
                }
                _ = stop.wait_for(|s| *s) => return,
            }
            let line = match gate.latest() {
                Some(snap) => {
                    let report = Report::from_checks(snap.checks.clone(), snap.duration);
                    status_line(allocator.allocated_ports().len(), &ranges, &report)
                }
                None => continue,
            };
            if ready {
                notifier.status(&line);
            } else {
                notifier.ready(&line);
                tracing::info!(status = %line, "told systemd we are ready");
                ready = true;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_notify_socket_nothing_is_sent_and_no_watchdog_runs() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.loop_healthy();
        n.ready("x");
        n.stopping();
    }

    #[test]
    fn the_status_line_counts_allocations_and_names_failing_checks() {
        use crate::network::{CheckResult, CheckStatus};
        let ranges: RangeSet = RangeSet::new(vec!["8000-8100".parse().unwrap()]).unwrap();
        let healthy = Report::from_checks(vec![], Duration::ZERO);
        assert_eq!(
            status_line(1, &ranges, &healthy),
            "1 allocation in 8000-8100; network healthy"
        );
        let tw = CheckResult::new("time_wait_sockets", CheckStatus::Warning, "x");
        let warned = Report::from_checks(vec![tw], Duration::ZERO);
        assert_eq!(
            status_line(3, &ranges, &warned),
            "3 allocations in 8000-8100; network warning (0 critical, 1 warnings: time_wait_sockets)"
        );
    }
}
