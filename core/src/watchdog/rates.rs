//! Network I/O rates between two watchdog passes, per interface and in total.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::network::{IoCounters, IoStats};

/// Per-second rates over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct IoRate {
    pub bytes_sent_per_s: f64,
    pub bytes_recv_per_s: f64,
    pub packets_sent_per_s: f64,
    pub packets_recv_per_s: f64,
    pub errors_in_per_s: f64,
    pub errors_out_per_s: f64,
    pub drops_in_per_s: f64,
    pub drops_out_per_s: f64,
}

impl IoRate {
    fn between(before: &IoCounters, after: &IoCounters, seconds: f64) -> Self {
        // A counter that went down (interface reset) counts as no traffic, not a negative one.
        let r = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
        IoRate {
            bytes_sent_per_s: r(before.bytes_sent, after.bytes_sent),
            bytes_recv_per_s: r(before.bytes_recv, after.bytes_recv),
            packets_sent_per_s: r(before.packets_sent, after.packets_sent),
            packets_recv_per_s: r(before.packets_recv, after.packets_recv),
            errors_in_per_s: r(before.errors_in, after.errors_in),
            errors_out_per_s: r(before.errors_out, after.errors_out),
            drops_in_per_s: r(before.drops_in, after.drops_in),
            drops_out_per_s: r(before.drops_out, after.drops_out),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct IoRates {
    /// Length of the interval the rates cover.
    pub interval_seconds: f64,
    pub total: IoRate,
    pub interfaces: BTreeMap<String, IoRate>,
}

/// Remembers the previous sample.
#[derive(Debug, Default)]
pub struct RateMeter {
    previous: Option<(Instant, IoStats)>,
}

impl RateMeter {
    /// Rates since the previous sample (None for the first one).
    pub fn sample(&mut self, at: Instant, stats: IoStats) -> Option<IoRates> {
        let rates = self.previous.as_ref().and_then(|(then, before)| {
            let seconds = at.duration_since(*then).as_secs_f64();
            (seconds > 0.0).then(|| IoRates {
                interval_seconds: seconds,
                total: IoRate::between(&before.total, &stats.total, seconds),
                interfaces: stats
                    .interfaces
                    .iter()
                    .filter_map(|(name, after)| {
                        let b = before.interfaces.get(name)?;
                        Some((name.clone(), IoRate::between(b, after, seconds)))
                    })
                    .collect(),
            })
        });
        self.previous = Some((at, stats));
        rates
    }
}
