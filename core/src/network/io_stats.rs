//! Network I/O counters per interface and in total (bytes, packets, errors, drops from
//! /proc/net/dev) together with TCP connections by state, rendered as the seed's
//! `/network/stats` sample.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::census::{take_census, CensusRequest, CensusSource};
use super::procfs::{self, ProcError};

/// Counters of one interface (or the sum over all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IoCounters {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub errors_in: u64,
    pub errors_out: u64,
    pub drops_in: u64,
    pub drops_out: u64,
}

impl IoCounters {
    fn add(&mut self, other: &IoCounters) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_recv += other.bytes_recv;
        self.packets_sent += other.packets_sent;
        self.packets_recv += other.packets_recv;
        self.errors_in += other.errors_in;
        self.errors_out += other.errors_out;
        self.drops_in += other.drops_in;
        self.drops_out += other.drops_out;
    }
}

/// TCP sockets by state, as in the seed (`ESTABLISHED`, `LISTEN`, `TIME_WAIT`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionCounts {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    pub source: Option<CensusSource>,
}

/// I/O counters and connection counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoStats {
    pub total: IoCounters,
    pub interfaces: BTreeMap<String, IoCounters>,
    pub connections: ConnectionCounts,
    /// What could not be read.
    pub errors: Vec<String>,
}

impl IoStats {
    /// The seed's `/network/stats` shape: `{"io": {...totals, "per_interface": {...}},
    /// "connections": {"total", "by_status": {...}}}`.
    pub fn to_seed_json(&self) -> Value {
        let mut io = serde_json::to_value(self.total).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut io {
            map.insert(
                "per_interface".into(),
                serde_json::to_value(&self.interfaces).unwrap_or_else(|_| json!({})),
            );
        }
        let mut connections = json!({
            "total": self.connections.total,
            "by_status": self.connections.by_status,
        });
        if let (Value::Object(map), Some(source)) = (&mut connections, self.connections.source) {
            map.insert("source".into(), source.as_str().into());
        }
        let mut stats = json!({ "io": io, "connections": connections });
        if !self.errors.is_empty() {
            if let Value::Object(map) = &mut stats {
                map.insert("errors".into(), self.errors.clone().into());
            }
        }
        stats
    }
}

/// Parses /proc/net/dev (two header lines, then `name: 16 counters`).
/// Reads the interface counters only (no census): `connections` is left empty. Windows: the
/// interface table (GetIfTable2), filter layers left out (they repeat their adapter's counts).
#[cfg(windows)]
pub fn interface_counters() -> IoStats {
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        FreeMibTable, GetIfTable2, MIB_IF_TABLE2,
    };
    /// `FilterInterface` in the row's flag bits.
    const FILTER_INTERFACE: u8 = 0b10;
    let mut stats = IoStats::default();
    let mut table: *mut MIB_IF_TABLE2 = std::ptr::null_mut();
    // SAFETY: GetIfTable2 allocates the table, freed below with FreeMibTable.
    let rc = unsafe { GetIfTable2(&mut table) };
    if rc != 0 || table.is_null() {
        stats.errors.push(format!(
            "GetIfTable2: {}",
            std::io::Error::from_raw_os_error(rc as i32)
        ));
        return stats;
    }
    // SAFETY: the table holds NumEntries rows after its header, valid until freed.
    unsafe {
        let rows =
            std::slice::from_raw_parts((*table).Table.as_ptr(), (*table).NumEntries as usize);
        for row in rows {
            if row.InterfaceAndOperStatusFlags._bitfield & FILTER_INTERFACE != 0 {
                continue;
            }
            let end = row
                .Alias
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(row.Alias.len());
            let name = String::from_utf16_lossy(&row.Alias[..end]);
            if name.is_empty() || stats.interfaces.contains_key(&name) {
                continue;
            }
            let counters = IoCounters {
                bytes_sent: row.OutOctets,
                bytes_recv: row.InOctets,
                packets_sent: row.OutUcastPkts + row.OutNUcastPkts,
                packets_recv: row.InUcastPkts + row.InNUcastPkts,
                errors_in: row.InErrors,
                errors_out: row.OutErrors,
                drops_in: row.InDiscards,
                drops_out: row.OutDiscards,
            };
            stats.total.add(&counters);
            stats.interfaces.insert(name, counters);
        }
        FreeMibTable(table.cast());
    }
    stats
}

/// Reads the interface counters only (no census): `connections` is left empty.
#[cfg(not(windows))]
pub fn interface_counters() -> IoStats {
    let mut stats = IoStats::default();
    match procfs::read_text(procfs::NET_DEV).and_then(|text| parse_net_dev(&text)) {
        Ok(interfaces) => {
            for counters in interfaces.values() {
                stats.total.add(counters);
            }
            stats.interfaces = interfaces;
        }
        Err(error) => stats.errors.push(error.to_string()),
    }
    stats
}

pub fn parse_net_dev(text: &str) -> Result<BTreeMap<String, IoCounters>, ProcError> {
    let mut interfaces = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let values: Vec<u64> = counters
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| ProcError::format(procfs::NET_DEV, format!("bad line '{line}'")))?;
        if values.len() < 16 {
            return Err(ProcError::format(
                procfs::NET_DEV,
                format!("short line '{line}'"),
            ));
        }
        interfaces.insert(
            name.trim().to_string(),
            IoCounters {
                bytes_recv: values[0],
                packets_recv: values[1],
                errors_in: values[2],
                drops_in: values[3],
                bytes_sent: values[8],
                packets_sent: values[9],
                errors_out: values[10],
                drops_out: values[11],
            },
        );
    }
    Ok(interfaces)
}

/// Reads interface counters and a fresh connection census.
pub fn io_stats() -> IoStats {
    let mut stats = interface_counters();
    match take_census(CensusRequest::FULL) {
        Ok(census) => {
            stats.connections = ConnectionCounts {
                total: census.total(),
                by_status: census
                    .by_status()
                    .into_iter()
                    .map(|(name, count)| (name.to_string(), count))
                    .collect(),
                source: Some(census.source),
            };
        }
        Err(error) => stats.errors.push(error.to_string()),
    }
    stats
}
