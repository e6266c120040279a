//! Listen queue overflows: TcpExt ListenOverflows / ListenDrops from /proc/net/netstat, compared
//! with the values seen by the previous report (kept in a process-wide history).

use std::sync::Mutex;

use super::check::{names, CheckResult, CheckStatus};
use super::procfs::{self, ProcError};
use super::thresholds::Thresholds;

/// Kernel counters of connections dropped because an accept queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenCounters {
    pub overflows: u64,
    pub drops: u64,
}

/// Reads TcpExt ListenOverflows and ListenDrops.
pub fn read_listen_counters() -> Result<ListenCounters, ProcError> {
    parse_netstat(&procfs::read_text(procfs::NET_NETSTAT)?)
}

/// Parses the `TcpExt:` header/value line pair of /proc/net/netstat.
pub fn parse_netstat(text: &str) -> Result<ListenCounters, ProcError> {
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        return Err(ProcError::format(procfs::NET_NETSTAT, "no TcpExt section"));
    };
    let mut counters = ListenCounters::default();
    let mut found = 0;
    for (name, value) in header
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
    {
        let slot = match name {
            "ListenOverflows" => &mut counters.overflows,
            "ListenDrops" => &mut counters.drops,
            _ => continue,
        };
        *slot = value
            .parse()
            .map_err(|_| ProcError::format(procfs::NET_NETSTAT, format!("bad {name} '{value}'")))?;
        found += 1;
    }
    if found < 2 {
        return Err(ProcError::format(
            procfs::NET_NETSTAT,
            "ListenOverflows/ListenDrops missing",
        ));
    }
    Ok(counters)
}

/// The counters seen by the previous observation.
#[derive(Debug, Default)]
pub struct ListenOverflowHistory {
    previous: Option<ListenCounters>,
}

impl ListenOverflowHistory {
    pub const fn new() -> Self {
        ListenOverflowHistory { previous: None }
    }

    /// Records `current` and judges the change since the previous observation.
    pub fn observe(&mut self, current: ListenCounters, thresholds: &Thresholds) -> CheckResult {
        let previous = self.previous.replace(current);
        let mut result = CheckResult::new(
            names::LISTEN_OVERFLOWS,
            CheckStatus::Ok,
            "No listen queue overflows since the previous report",
        )
        .with_field("listen_overflows", current.overflows)
        .with_field("listen_drops", current.drops);
        let Some(previous) = previous else {
            result.note = format!(
                "Baseline recorded ({} overflows, {} drops since boot)",
                current.overflows, current.drops
            );
            return result;
        };
        // Counters only go down if the namespace was recreated; treat that as a new baseline.
        let overflows = current.overflows.saturating_sub(previous.overflows);
        let drops = current.drops.saturating_sub(previous.drops);
        result.set_field("overflows_since_previous", overflows);
        result.set_field("drops_since_previous", drops);
        if overflows.max(drops) > thresholds.listen_overflow_increase_warning {
            result.escalate(
                CheckStatus::Warning,
                format!("Listen queues overflowed: +{overflows} overflows, +{drops} drops since the previous report"),
            );
            result.recommendation = Some(
                "A service accepts too slowly: raise its listen backlog and net.core.somaxconn, \
                 or accept faster"
                    .into(),
            );
        }
        result
    }
}

static HISTORY: Mutex<ListenOverflowHistory> = Mutex::new(ListenOverflowHistory::new());

/// Reads the counters and compares them with the previous report in this process.
pub fn listen_overflows(thresholds: &Thresholds) -> CheckResult {
    if cfg!(not(target_os = "linux")) {
        return CheckResult::unsupported(names::LISTEN_OVERFLOWS);
    }
    match read_listen_counters() {
        Ok(current) => {
            // A poisoned lock only means another report panicked mid-update; the data is plain.
            let mut history = HISTORY
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            history.observe(current, thresholds)
        }
        Err(error) => CheckResult::new(
            names::LISTEN_OVERFLOWS,
            CheckStatus::Warning,
            format!("cannot read listen counters: {error}"),
        )
        .with_field("error", error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_counters_warn_and_steady_counters_do_not() {
        let thresholds = Thresholds::default();
        let mut history = ListenOverflowHistory::new();
        let first = history.observe(
            ListenCounters {
                overflows: 5,
                drops: 5,
            },
            &thresholds,
        );
        assert_eq!(first.status, CheckStatus::Ok);
        let steady = history.observe(
            ListenCounters {
                overflows: 5,
                drops: 5,
            },
            &thresholds,
        );
        assert_eq!(steady.status, CheckStatus::Ok);
        let grown = history.observe(
            ListenCounters {
                overflows: 9,
                drops: 9,
            },
            &thresholds,
        );
        assert_eq!(grown.status, CheckStatus::Warning);
    }

    #[test]
    fn live_netstat_has_the_listen_counters() {
        read_listen_counters().expect("/proc/net/netstat has TcpExt ListenOverflows");
    }
}
