//! What can go wrong in the port manager, in terms a caller can act on.

use super::store::StoreError;
use crate::network::Report;

/// One offending field of a request and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub rule: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("port {port} is not allocated{}", .resting.as_ref().map(Resting::describe).unwrap_or_default())]
    NotAllocated {
        port: u16,
        /// Its release, while the port rests in quarantine after it.
        resting: Option<Resting>,
    },
    #[error("port {port} is held by service '{service}'{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    HeldBy {
        port: u16,
        service: String,
        pid: Option<i32>,
    },
    #[error("port {port} is in use by {}: {detail}", .holder.as_deref().unwrap_or("a process outside portwarden"))]
    InUse {
        port: u16,
        detail: String,
        /// The listening process(es), when the socket table and /proc say ("pid 12 (nginx)").
        holder: Option<String>,
    },
    #[error("port {port} cannot be bound (blocked by a firewall or privilege rule): {detail}")]
    Blocked {
        port: u16,
        detail: String,
        /// The network report of the pre-allocation checks, when they ran.
        report: Option<Box<Report>>,
    },
    #[error("allocation refused by the host's network: {}", crate::network::blocking::explain_all(.report, .blocking))]
    NetworkCritical {
        report: Box<Report>,
        /// The critical checks that refuse allocations (`blocking_checks`).
        blocking: Vec<String>,
    },
    #[error("cannot draw a lease token: {0}")]
    Token(std::io::Error),
    #[error(
        "port {port} is quarantined for {remaining_ms} ms more (released by '{last_service}')"
    )]
    Quarantined {
        port: u16,
        remaining_ms: u64,
        last_service: String,
    },
    #[error("{}", super::exhausted::describe(*pool, ranges, *total, *held, holders, *quarantined, *first_free_in_ms, *unavailable))]
    Exhausted {
        pool: super::pool::Pool,
        ranges: String,
        /// Ports in the managed ranges.
        total: usize,
        held: usize,
        quarantined: usize,
        /// When the first quarantined port is free again.
        first_free_in_ms: Option<u64>,
        unavailable: usize,
        /// Services holding ports, with how many each, most first.
        holders: Vec<(String, usize)>,
    },
    #[error("permission denied for port {port}: {reason}")]
    PermissionDenied { port: u16, reason: String },
    #[error("the allocation of port {port} is dead ({reason}) and was reclaimed")]
    LeaseDead { port: u16, reason: String },
    #[error("events up to {oldest_retained_minus_one} were compacted away; resume from {oldest_retained_minus_one} or later, or start with a snapshot", oldest_retained_minus_one = .oldest_retained - 1)]
    Compacted {
        requested: u64,
        oldest_retained: u64,
    },
    #[error("sequence {requested} is beyond the newest event ({last}); is this the same daemon and state?")]
    AheadOfLog { requested: u64, last: u64 },
    #[error("{0}")]
    Watch(#[from] crate::events::SubscribeError),
    #[error("{subject} holds {held} port(s), its limit ({quota} = {limit}); release one first")]
    QuotaExceeded {
        quota: &'static str,
        subject: String,
        held: usize,
        limit: usize,
    },
    #[error("the service name '{service}' belongs to uid {owner_uid}; choose another name (or ask that user or root)")]
    NameTaken { service: String, owner_uid: u32 },
    #[error("{what} needs to know who is calling, and this connection does not say (callers are identified on the Unix socket and loopback TCP): connect over one of those{}", if *.what == "reuse" { ", or allocate with a TTL or an owning process so the port comes back by itself" } else { "" })]
    CallerUnknown { what: &'static str },
    #[error("the project {project} belongs to uid {owner_uid}; only that user (or root) may use or forget its ports")]
    ProjectNotYours { project: String, owner_uid: u32 },
    #[error("cannot decide now, try again: {reason}")]
    Unavailable { reason: String },
    #[error("state store: {0}")]
    Store(#[from] StoreError),
}

/// A port resting after its release: who had it, when it was released, when it is free again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resting {
    pub service: String,
    pub released_at_ms: i64,
    pub until_ms: i64,
}

impl Resting {
    /// ": it was released at ... (service web) and rests until ... (quarantine)".
    fn describe(&self) -> String {
        format!(
            ": it was released at {} (service {}) and rests until {} (quarantine)",
            super::clock::rfc3339(self.released_at_ms),
            crate::text::printable(&self.service),
            super::clock::rfc3339(self.until_ms)
        )
    }
}

fn describe(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|f| format!("{}: {}", f.field, f.rule))
        .collect::<Vec<_>>()
        .join("; ")
}

impl PortsError {
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, rule)])
    }
}
