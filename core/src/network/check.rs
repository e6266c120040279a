//! The one shape every diagnostic check returns: a status, the measured fields, a one-line note
//! and an optional recommendation. Rendering to JSON (and later to text or metrics) is done once,
//! from this shape.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Names of the checks, as they appear in reports and in `critical_issues` / `warnings`.
pub mod names {
    pub const IPV4_AVAILABLE: &str = "ipv4_available";
    pub const IPV6_AVAILABLE: &str = "ipv6_available";
    pub const SOCKET_REUSE: &str = "socket_reuse";
    pub const FILE_DESCRIPTORS: &str = "file_descriptors";
    pub const NETWORK_INTERFACES: &str = "network_interfaces";
    pub const FIREWALL: &str = "firewall";
    pub const TIME_WAIT_SOCKETS: &str = "time_wait_sockets";
    pub const CONNECTION_LIMITS: &str = "connection_limits";
    pub const DNS_RESOLUTION: &str = "dns_resolution";
    pub const PORT_EXHAUSTION: &str = "port_exhaustion";
    pub const SSL_READINESS: &str = "ssl_readiness";
    pub const LISTEN_OVERFLOWS: &str = "listen_overflows";
    pub const STATE_STORAGE: &str = "state_storage";
}

/// Note used by checks that cannot run on the current operating system.
pub const UNSUPPORTED_NOTE: &str = "unsupported on this platform";

/// Severity of one check. Ordered: `Ok < Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    /// Worth knowing, never changes the overall status.
    Info,
    Warning,
    Critical,
}

impl CheckStatus {
    /// The wire name: `ok`, `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Info => "info",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }
}

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable check name (see [`names`]).
    pub name: String,
    pub status: CheckStatus,
    /// One line saying what was found.
    pub note: String,
    /// What to do about it, when there is something useful to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// Measured values, named as in the seed JSON.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

impl CheckResult {
    pub fn new(name: &str, status: CheckStatus, note: impl Into<String>) -> Self {
        CheckResult {
            name: name.to_string(),
            status,
            note: note.into(),
            recommendation: None,
            fields: Map::new(),
        }
    }

    /// Info result for a check that cannot run on this operating system.
    pub fn unsupported(name: &str) -> Self {
        CheckResult::new(name, CheckStatus::Info, UNSUPPORTED_NOTE).with_field("supported", false)
    }

    pub fn with_field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    pub fn with_recommendation(mut self, recommendation: impl Into<String>) -> Self {
        self.recommendation = Some(recommendation.into());
        self
    }

    pub fn set_field(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.insert(key.to_string(), value.into());
    }

    /// Raises the status to `status` if that is more severe, and replaces the note when it does.
    pub fn escalate(&mut self, status: CheckStatus, note: impl Into<String>) {
        if status > self.status {
            self.status = status;
            self.note = note.into();
        }
    }

    /// A field, if present.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// The seed's per-check shape: `{"status": .., <fields>.., "note": .., "recommendation": ..}`.
    pub fn to_seed_json(&self) -> Value {
        let mut object = Map::with_capacity(self.fields.len() + 3);
        object.insert("status".into(), Value::from(self.status.as_str()));
        for (key, value) in &self.fields {
            object.insert(key.clone(), value.clone());
        }
        object.insert("note".into(), Value::from(self.note.clone()));
        if let Some(recommendation) = &self.recommendation {
            object.insert("recommendation".into(), Value::from(recommendation.clone()));
        }
        Value::Object(object)
    }
}

/// Rounds to one decimal, as the seed prints percentages (`2.1`).
pub(crate) fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Percentage of `used` in `total`; 0 when `total` is 0.
pub(crate) fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}
