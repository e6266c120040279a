//! What a running daemon says about itself in Status: its version, when it started, where it
//! listens and which state file it keeps, so `portwarden status` tells an operator which daemon
//! answered.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct DaemonInfo {
    pub version: &'static str,
    pub pid: u32,
    /// Wall-clock start, ms since the epoch.
    pub started_at_ms: i64,
    pub state_path: PathBuf,
    /// Filled in once the listeners are bound ("127.0.0.1:7070", "unix:/run/...").
    listeners: RwLock<Vec<String>>,
}

impl DaemonInfo {
    pub fn new(state_path: PathBuf) -> Self {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            started_at_ms,
            state_path,
            listeners: RwLock::new(Vec::new()),
        }
    }

    pub fn add_listener(&self, address: String) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(address);
    }

    /// What a second daemon of this network namespace is told about this one.
    pub fn holder(&self) -> crate::netns::Holder {
        crate::netns::Holder {
            pid: self.pid,
            version: self.version.to_string(),
            state: self.state_path.display().to_string(),
            listeners: self.listeners(),
        }
    }

    pub fn listeners(&self) -> Vec<String> {
        self.listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
