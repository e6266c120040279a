//! Every diagnostic threshold, in one table: name, type, default, unit and where the default
//! comes from. The table is also available at run time as [`Thresholds::TABLE`] so that config
//! documentation and `--help` text can be generated from it.

use serde::{Deserialize, Serialize};

/// One row of the threshold table, for documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub unit: &'static str,
    pub source: &'static str,
}

macro_rules! threshold_table {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty = $default:expr, $unit:literal, $source:literal; )*) => {
        /// Diagnostic thresholds. A finding is raised when a measured value crosses one; see
        /// [`Thresholds::TABLE`] for units and the source of each default.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Thresholds {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl Default for Thresholds {
            fn default() -> Self {
                Thresholds { $( $field: $default, )* }
            }
        }

        impl Thresholds {
            /// The table itself: one row per threshold.
            pub const TABLE: &'static [ThresholdSpec] = &[
                $( ThresholdSpec {
                    name: stringify!($field),
                    default: stringify!($default),
                    unit: $unit,
                    source: $source,
                }, )*
            ];
        }
    };
}

threshold_table! {
    //  name                               type = default, unit, source of the default
    /// RLIMIT_NOFILE soft limit below this: warning.
    fd_soft_limit_min: u64 = 1024, "descriptors", "seed: 'Warns if <1024'; design table";
    /// Descriptor use (process of its soft limit, or system of fs.file-max) above this: warning.
    fd_usage_warning_percent: f64 = 80.0, "% of limit", "design table (file_descriptors)";
    /// Descriptor use above this: critical.
    fd_usage_critical_percent: f64 = 95.0, "% of limit", "design table (file_descriptors)";
    /// TIME_WAIT sockets on the checked port above this: warning.
    time_wait_per_port_warning: u64 = 10, "sockets", "seed: 'Warns if >10'";
    /// System-wide TIME_WAIT sockets above this share of net.ipv4.tcp_max_tw_buckets: warning.
    time_wait_system_warning_percent: f64 = 50.0, "% of tcp_max_tw_buckets", "design table (time_wait_sockets)";
    /// Total TCP sockets (all states, IPv4 + IPv6) above this: warning.
    connections_total_warning: u64 = 10_000, "sockets", "seed: 'Warns if >10,000 connections'";
    /// DNS lookups (localhost + hostname) slower than this: info.
    dns_slow_ms: u64 = 100, "milliseconds", "design table (dns_resolution)";
    /// Distinct local ports in use within ip_local_port_range above this share: warning.
    ephemeral_usage_warning_percent: f64 = 60.0, "% of ip_local_port_range", "seed: 'Warns at 60%'";
    /// Ephemeral port use above this share: critical.
    ephemeral_usage_critical_percent: f64 = 80.0, "% of ip_local_port_range", "seed: 'critical at 80%'";
    /// A certificate (leaf or chain) expiring within this many days: critical.
    tls_expiry_critical_days: i64 = 7, "days", "design table (ssl_readiness)";
    /// A certificate expiring within this many days: warning.
    tls_expiry_warning_days: i64 = 30, "days", "design table (ssl_readiness)";
    /// ListenOverflows + ListenDrops growing by more than this since the previous report: warning.
    listen_overflow_increase_warning: u64 = 0, "events", "design table (listen_overflows: 'increasing')";
    /// Free space on the state's filesystem below this: warning.
    state_free_warning_mib: u64 = 100, "MiB", "portwarden: room for months of events and allocations";
    /// Free space on the state's filesystem below this: critical (the next writes may fail).
    state_free_critical_mib: u64 = 1, "MiB", "portwarden: a few hundred commits of the write-ahead log";
    /// A system snapshot older than this is not reused for per-port checks.
    snapshot_max_age_ms: u64 = 5_000, "milliseconds", "portwarden brief (allocator reuses a <= 5 s snapshot)";
}
