//! Read at scrape time: the managed ports by state (the allocator's Status, which probes nothing
//! while the socket table's listeners are known); from the latest network snapshot (the
//! watchdog's pass refreshes it; a scrape takes one only when there is none), each check's
//! status, TCP sockets by state and ephemeral port usage; the allocator's totals (allocations,
//! releases, reclaims by reason) and the watchdog's (passes, issues, pass durations, watchers).
//! No port is probed and no snapshot retaken per scrape.

use std::collections::BTreeSet;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::network::{names, CheckStatus, NetworkGate, OverallStatus, TcpState};
use crate::ports::{Allocator, ReclaimReason};
use crate::watchdog::Watchdog;

pub struct DomainCollector {
    allocator: Arc<Allocator>,
    gate: Arc<NetworkGate>,
    watchdog: Arc<Watchdog>,
}

impl std::fmt::Debug for DomainCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainCollector").finish_non_exhaustive()
    }
}

impl DomainCollector {
    pub fn new(allocator: Arc<Allocator>, gate: Arc<NetworkGate>, watchdog: Arc<Watchdog>) -> Self {
        Self {
            allocator,
            gate,
            watchdog,
        }
    }
}

/// One gauge family: `name{label=value}` for each pair.
fn gauge_family<V: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    label: &'static str,
    values: &[(&str, V)],
) -> Result<(), std::fmt::Error>
where
    ConstGauge<V>: EncodeMetric,
{
    let mut metric = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (value_label, value) in values {
        let labels = [(label, *value_label)];
        ConstGauge::new(*value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: V,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<V>: EncodeMetric,
{
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, unit, c.metric_type())?)
}

fn check_level(status: CheckStatus) -> i64 {
    match status {
        CheckStatus::Ok => 0,
        CheckStatus::Info => 1,
        CheckStatus::Warning => 2,
        CheckStatus::Critical => 3,
    }
}

impl Collector for DomainCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.allocator.status();
        gauge(
            &mut encoder,
            "managed_ports",
            "Ports in the managed ranges",
            None,
            s.total as i64,
        )?;
        gauge_family(
            &mut encoder,
            "ports",
            "Managed ports by state (allocated, free, quarantined, unavailable: unleased but in use or refused by the host)",
            None,
            "state",
            &[
                ("allocated", s.allocated as i64),
                ("free", s.available as i64),
                ("quarantined", s.quarantined as i64),
                ("unavailable", s.unavailable as i64),
            ],
        )?;

        let totals = self.allocator.counters();
        counter(
            &mut encoder,
            "allocations",
            "Ports allocated since start-up",
            None,
            totals.allocated,
        )?;
        counter(
            &mut encoder,
            "releases",
            "Ports released by their owners since start-up",
            None,
            totals.released,
        )?;
        let mut reclaims = encoder.encode_descriptor(
            "reclaims",
            "Allocations reclaimed since start-up, by reason (owner_exited, pid_reused, rebooted, lease_expired)",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in ReclaimReason::ALL.iter().zip(totals.reclaimed) {
            ConstCounter::new(n).encode(reclaims.encode_family(&[("reason", reason.as_str())])?)?;
        }
        let w = self.watchdog.status();
        counter(
            &mut encoder,
            "watchdog_passes",
            "Watchdog passes completed since start-up",
            None,
            w.passes,
        )?;
        counter(
            &mut encoder,
            "watchdog_issues",
            "Issues the watchdog found since start-up (squatters, listeners gone, CLOSE_WAIT leaks, outside listeners, the network getting worse)",
            None,
            w.issues_detected,
        )?;
        let histogram = encoder.encode_descriptor(
            "watchdog_pass_duration",
            "Wall time of watchdog passes",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        let mut histogram = histogram;
        histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            w.pass_durations.sum_seconds,
            w.pass_durations.count,
            &w.pass_durations.buckets(),
            None,
        )?;
        gauge(
            &mut encoder,
            "watchers",
            "Event watchers connected now (gRPC Watch and Server-Sent Events)",
            None,
            w.watchers as i64,
        )?;
        gauge(
            &mut encoder,
            "events_last_sequence",
            "Sequence number of the newest event",
            None,
            w.last_sequence as i64,
        )?;

        // The watchdog's pass keeps this fresh; only a scrape before the first pass takes one.
        let snap = match self.gate.latest() {
            Some(snap) => snap,
            None => self.gate.snapshot(),
        };
        gauge(
            &mut encoder,
            "network_snapshot_age",
            "Age of the network snapshot these network metrics come from",
            Some(&Unit::Seconds),
            snap.age().as_secs_f64(),
        )?;
        let report = crate::network::Report::from_checks(snap.checks.clone(), snap.duration);
        gauge(
            &mut encoder,
            "network_status",
            "Overall network status: 0 healthy, 2 warning, 3 critical",
            None,
            match report.status {
                OverallStatus::Healthy => 0i64,
                OverallStatus::Warning => 2,
                OverallStatus::Critical => 3,
            },
        )?;
        let checks: Vec<(&str, i64)> = snap
            .checks
            .iter()
            .map(|c| (c.name.as_str(), check_level(c.status)))
            .collect();
        gauge_family(
            &mut encoder,
            "network_check_status",
            "Status of each network check: 0 ok, 1 info, 2 warning, 3 critical",
            None,
            "check",
            &checks,
        )?;
        if let Ok(census) = &snap.census {
            let by_status = census.by_status();
            let states: BTreeSet<&'static str> =
                TcpState::ALL.iter().map(|s| s.psutil_name()).collect();
            let counts: Vec<(&str, i64)> = states
                .into_iter()
                .map(|name| (name, by_status.get(name).copied().unwrap_or(0) as i64))
                .collect();
            gauge_family(
                &mut encoder,
                "tcp_connections",
                "TCP sockets on the host by state (TIME_WAIT, CLOSE_WAIT, ESTABLISHED, ...), as ss counts them",
                None,
                "state",
                &counts,
            )?;
        }
        if let Some(check) = snap
            .checks
            .iter()
            .find(|c| c.name == names::PORT_EXHAUSTION)
        {
            let field = |k: &str| check.field(k).and_then(serde_json::Value::as_f64);
            if let (Some(used), Some(total)) = (
                field("ephemeral_ports_used"),
                field("ephemeral_ports_total"),
            ) {
                gauge(
                    &mut encoder,
                    "ephemeral_ports_used",
                    "Distinct local ports in use inside ip_local_port_range",
                    None,
                    used as i64,
                )?;
                gauge(
                    &mut encoder,
                    "ephemeral_ports",
                    "Size of ip_local_port_range",
                    None,
                    total as i64,
                )?;
                gauge(
                    &mut encoder,
                    "ephemeral_ports_used_ratio",
                    "Share of the ephemeral port range in use (0-1)",
                    None,
                    if total > 0.0 { used / total } else { 0.0 },
                )?;
            }
        }
        Ok(())
    }
}
