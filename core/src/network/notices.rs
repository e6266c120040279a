//! Host-wide findings are logged when they appear, when they change severity and when they
//! clear: once, not on every allocation that happens to run while they last. Each new snapshot
//! is compared with what was logged last.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::blocking::{explain, BlockingChecks};
use super::check::{CheckResult, CheckStatus};

#[derive(Debug, Default)]
pub struct HostNotices {
    /// The warning or critical checks as last logged: name -> status.
    logged: Mutex<BTreeMap<String, CheckStatus>>,
}

impl HostNotices {
    /// Logs what moved between the last snapshot's findings and `checks`.
    pub fn note(&self, checks: &[CheckResult], blocking: &BlockingChecks) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        for c in checks {
            let before = logged.get(&c.name).copied();
            let now = (c.status >= CheckStatus::Warning).then_some(c.status);
            if before == now {
                continue;
            }
            match now {
                Some(CheckStatus::Critical) if blocking.contains(&c.name) => tracing::error!(
                    check = %c.name,
                    "[NETWORK-HARDENING] Critical: {}; allocations are refused until it clears",
                    explain(c)
                ),
                Some(CheckStatus::Critical) => tracing::error!(
                    check = %c.name,
                    "[NETWORK-HARDENING] Critical: {}; allocations go on (not a blocking check)",
                    explain(c)
                ),
                Some(_) => tracing::warn!(
                    check = %c.name,
                    "[NETWORK-HARDENING] Warning: {}",
                    explain(c)
                ),
                None => tracing::info!(
                    check = %c.name,
                    "[NETWORK-HARDENING] Cleared: {}: {}",
                    c.name,
                    c.note
                ),
            }
            match now {
                Some(status) => logged.insert(c.name.clone(), status),
                None => logged.remove(&c.name),
            };
        }
    }
}
