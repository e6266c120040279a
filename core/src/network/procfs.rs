//! Small, non-panicking readers for /proc and /sys files. Every failure names the file, so a
//! check can report exactly what it could not read.

use std::io;
use std::path::Path;

/// A kernel file could not be read or did not have the expected format.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("unexpected content in {path}: {detail}")]
    Format { path: String, detail: String },
}

impl ProcError {
    pub(crate) fn format(path: &str, detail: impl Into<String>) -> Self {
        ProcError::Format {
            path: path.to_string(),
            detail: detail.into(),
        }
    }

    /// True when the file does not exist (as opposed to unreadable or malformed).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

#[cfg_attr(windows, allow(dead_code))]
pub(crate) const IP_LOCAL_PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
#[cfg_attr(windows, allow(dead_code))]
pub(crate) const TCP_MAX_TW_BUCKETS: &str = "/proc/sys/net/ipv4/tcp_max_tw_buckets";
#[cfg_attr(windows, allow(dead_code))]
pub(crate) const FILE_NR: &str = "/proc/sys/fs/file-nr";
pub(crate) const NET_NETSTAT: &str = "/proc/net/netstat";
pub(crate) const NET_DEV: &str = "/proc/net/dev";

/// Reads a whole file as text.
pub fn read_text(path: impl AsRef<Path>) -> Result<String, ProcError> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Reads whitespace-separated unsigned integers (e.g. `file-nr`, `ip_local_port_range`).
pub fn read_numbers(path: &str) -> Result<Vec<u64>, ProcError> {
    read_text(path)?
        .split_whitespace()
        .map(|token| {
            token
                .parse::<u64>()
                .map_err(|_| ProcError::format(path, format!("'{token}' is not a number")))
        })
        .collect()
}

/// Reads a file holding a single unsigned integer.
pub fn read_number(path: &str) -> Result<u64, ProcError> {
    read_numbers(path)?
        .first()
        .copied()
        .ok_or_else(|| ProcError::format(path, "empty"))
}

/// Windows' dynamic port range, its counterpart (see `dynamic_ports`).
#[cfg(windows)]
pub fn ip_local_port_range() -> Result<(u16, u16), ProcError> {
    let range = super::dynamic_ports::dynamic_port_range();
    Ok((range.low, range.high))
}

/// `net.ipv4.ip_local_port_range` as an inclusive `(low, high)` pair.
#[cfg(not(windows))]
pub fn ip_local_port_range() -> Result<(u16, u16), ProcError> {
    let numbers = read_numbers(IP_LOCAL_PORT_RANGE)?;
    let as_port = |value: u64| u16::try_from(value).ok();
    match numbers.as_slice() {
        [low, high] => match (as_port(*low), as_port(*high)) {
            (Some(low), Some(high)) if low <= high => Ok((low, high)),
            _ => Err(ProcError::format(IP_LOCAL_PORT_RANGE, "not a port range")),
        },
        _ => Err(ProcError::format(
            IP_LOCAL_PORT_RANGE,
            "expected two numbers",
        )),
    }
}
