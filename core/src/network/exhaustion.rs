//! Ephemeral port exhaustion: distinct local TCP ports in use within net.ipv4.ip_local_port_range.

use super::census::{CensusRequest, SocketCensus};
use super::check::{names, percent, round1, CheckResult, CheckStatus};
use super::connections::{census_failed, describe_source};
use super::procfs;
use super::thresholds::Thresholds;
use super::NetworkConfig;

/// Usage above `ephemeral_usage_warning_percent`: warning; above
/// `ephemeral_usage_critical_percent`: critical. Always carries a recommendation (`"OK"` when
/// healthy), as the seed's `/network/port-exhaustion` sample does.
pub fn port_exhaustion_from(
    census: Result<&SocketCensus, &str>,
    range: Result<(u16, u16), &str>,
    thresholds: &Thresholds,
) -> CheckResult {
    let (low, high) = match range {
        Ok(range) => range,
        Err(error) => {
            return CheckResult::new(
                names::PORT_EXHAUSTION,
                CheckStatus::Warning,
                format!("cannot read the ephemeral port range: {error}"),
            )
            .with_field("error", error)
        }
    };
    let census = match census {
        Ok(census) => census,
        Err(error) => return census_failed(names::PORT_EXHAUSTION, error),
    };
    let total = u64::from(high - low) + 1;
    let used = census.distinct_local_ports_in(low, high);
    let usage = percent(used, total);
    let (status, recommendation) = if usage > thresholds.ephemeral_usage_critical_percent {
        (
            CheckStatus::Critical,
            "Ephemeral ports nearly exhausted: pool connections, reduce TIME_WAIT (keep-alive, \
             net.ipv4.tcp_tw_reuse=1) and widen net.ipv4.ip_local_port_range",
        )
    } else if usage > thresholds.ephemeral_usage_warning_percent {
        (
            CheckStatus::Warning,
            "Use connection pooling and keep-alive to reduce TIME_WAIT; consider widening \
             net.ipv4.ip_local_port_range",
        )
    } else {
        (CheckStatus::Ok, "OK")
    };
    let mut result = CheckResult::new(
        names::PORT_EXHAUSTION,
        status,
        format!("Ephemeral port usage {:.1}% ({used} of {total})", usage),
    )
    .with_field("ephemeral_ports_used", used)
    .with_field("ephemeral_ports_total", total)
    .with_field("usage_percent", round1(usage))
    .with_field("range_low", low)
    .with_field("range_high", high)
    .with_recommendation(recommendation);
    #[cfg(windows)]
    result.set_field(
        "range_source",
        super::dynamic_ports::dynamic_port_range().source,
    );
    describe_source(&mut result, census);
    result
}

/// Fresh ephemeral-port check: reads the range and takes a full census.
pub fn port_exhaustion(cfg: &NetworkConfig) -> CheckResult {
    let census = super::census::take_census(CensusRequest::FULL).map_err(|error| error.to_string());
    let range = procfs::ip_local_port_range().map_err(|error| error.to_string());
    port_exhaustion_from(
        census.as_ref().map_err(String::as_str),
        range.as_ref().map(|range| *range).map_err(String::as_str),
        &cfg.thresholds,
    )
}
