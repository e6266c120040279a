//! Connection-table checks built on the socket census: TIME_WAIT build-up (on the checked port
//! and system-wide against net.ipv4.tcp_max_tw_buckets) and the total connection count.

use super::census::{SocketCensus, TcpState};
use super::check::{names, percent, round1, CheckResult, CheckStatus};
use super::thresholds::Thresholds;

/// Adds the census provenance (`source`, notes, timing) to a check.
pub(crate) fn describe_source(result: &mut CheckResult, census: &SocketCensus) {
    result.set_field("source", census.source.as_str());
    result.set_field("census_ms", round1(census.duration.as_secs_f64() * 1000.0));
    if !census.notes.is_empty() {
        result.set_field("census_notes", census.notes.clone());
    }
}

/// Result for a check whose census could not be taken.
pub(crate) fn census_failed(name: &str, error: &str) -> CheckResult {
    if cfg!(not(any(target_os = "linux", windows))) {
        return CheckResult::unsupported(name);
    }
    CheckResult::new(
        name,
        CheckStatus::Warning,
        format!("cannot read the socket table: {error}"),
    )
    .with_field("error", error)
}

/// TIME_WAIT sockets on the checked port (either end): more than `time_wait_per_port_warning`
/// is a warning. System-wide TIME_WAIT above `time_wait_system_warning_percent` of
/// `tcp_max_tw_buckets`: warning. Both figures come from the same full census.
pub fn time_wait_sockets(
    system: Result<&SocketCensus, &str>,
    port: Option<u16>,
    max_buckets: Result<u64, &str>,
    thresholds: &Thresholds,
) -> CheckResult {
    let census = match system {
        Ok(census) => census,
        Err(error) => return census_failed(names::TIME_WAIT_SOCKETS, error),
    };
    let system_count = census.count(TcpState::TimeWait);
    let mut result = CheckResult::new(
        names::TIME_WAIT_SOCKETS,
        CheckStatus::Ok,
        format!(
            "{system_count} TIME_WAIT sockets system-wide (normal if <= {} per port)",
            thresholds.time_wait_per_port_warning
        ),
    )
    .with_field("time_wait_count", system_count)
    .with_field("system_time_wait", system_count);
    describe_source(&mut result, census);

    if let Some(port) = port {
        let on_port = census.time_wait_on_port(port);
        result.set_field("port", port);
        result.set_field("time_wait_count", on_port.total());
        result.set_field("time_wait_local_port", on_port.local);
        result.set_field("time_wait_remote_port", on_port.remote);
        let note = format!(
            "{} TIME_WAIT connections on port {port} (normal if <= {})",
            on_port.total(),
            thresholds.time_wait_per_port_warning
        );
        if on_port.total() > thresholds.time_wait_per_port_warning {
            result.escalate(CheckStatus::Warning, note);
            result.recommendation = Some(format!(
                "Enable SO_REUSEADDR on the listener of port {port}; reuse client connections \
                 instead of opening one per request"
            ));
        } else {
            result.note = note;
        }
    }

    match max_buckets {
        Ok(buckets) => {
            let usage = percent(system_count, buckets);
            result.set_field("tcp_max_tw_buckets", buckets);
            result.set_field("system_usage_percent", round1(usage));
            if usage > thresholds.time_wait_system_warning_percent {
                result.escalate(
                    CheckStatus::Warning,
                    format!(
                        "{system_count} TIME_WAIT sockets, {usage:.1}% of tcp_max_tw_buckets ({buckets})"
                    ),
                );
                result.recommendation = Some(
                    "Reuse connections (keep-alive, pooling); let servers close last; consider \
                     net.ipv4.tcp_tw_reuse=1 for outgoing connections"
                        .into(),
                );
            }
        }
        Err(error) => result.set_field("tcp_max_tw_buckets_error", error),
    }
    result
}

/// Counts by state; more than `connections_total_warning` sockets in total is a warning.
pub fn connection_limits(
    system: Result<&SocketCensus, &str>,
    thresholds: &Thresholds,
) -> CheckResult {
    let census = match system {
        Ok(census) => census,
        Err(error) => return census_failed(names::CONNECTION_LIMITS, error),
    };
    let total = census.total();
    let mut result = CheckResult::new(
        names::CONNECTION_LIMITS,
        CheckStatus::Ok,
        format!("{total} total connections (healthy)"),
    )
    .with_field("total_connections", total)
    .with_field("established", census.count(TcpState::Established))
    .with_field("listening", census.count(TcpState::Listen))
    .with_field("time_wait", census.count(TcpState::TimeWait))
    .with_field("ipv4_sockets", census.ipv4_sockets)
    .with_field("ipv6_sockets", census.ipv6_sockets)
    .with_field(
        "by_status",
        serde_json::to_value(census.by_status()).unwrap_or_default(),
    );
    describe_source(&mut result, census);
    if total > thresholds.connections_total_warning {
        result.escalate(
            CheckStatus::Warning,
            format!(
                "{total} total connections (> {})",
                thresholds.connections_total_warning
            ),
        );
        result.recommendation = Some(
            "Raise limits (RLIMIT_NOFILE, somaxconn) or spread load (load balancer, pooling)"
                .into(),
        );
    }
    result
}
