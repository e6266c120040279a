//! The log lines of a new allocation, in the seed's words: who got which port, owned how, for how
//! long, asked by whom, and what the network checks found about that port. Host-wide findings
//! are not repeated here on every allocation: the gate logs them when they appear and when they
//! clear (`network::notices`).

use super::lease::{Allocation, Caller, OwnerKind};
use super::range::RangeSet;
use crate::network::{CheckStatus, Report, SystemSnapshot};

/// "uid 1000 pid 4242", or "unidentified" when the connection does not say (TCP).
pub fn describe_caller(caller: &Caller) -> String {
    match (caller.uid, caller.pid) {
        (Some(uid), Some(pid)) => format!("uid {uid} pid {pid}"),
        (Some(uid), None) => format!("uid {uid}"),
        (None, Some(pid)) => format!("pid {pid}"),
        (None, None) => "unidentified".into(),
    }
}

/// "permanent", "process 4242", "lease 300 s", "process 4242 + lease 300 s".
pub fn describe_owner(a: &Allocation) -> String {
    let pid = a.pid().unwrap_or(0);
    let ttl = a.ttl_seconds.unwrap_or(0);
    match a.owner_kind() {
        OwnerKind::Permanent => "permanent (until released)".into(),
        OwnerKind::Process => format!("process {pid}"),
        OwnerKind::Lease => format!("lease {ttl} s"),
        OwnerKind::ProcessAndLease => format!("process {pid} + lease {ttl} s"),
    }
}

/// Names of the findings (warning or critical) of `report` that are about the port itself: not
/// the same as the host-wide snapshot's.
fn port_findings<'a>(report: &'a Report, host: Option<&SystemSnapshot>) -> Vec<&'a str> {
    report
        .checks
        .iter()
        .filter(|c| c.status >= CheckStatus::Warning)
        .filter(|c| {
            !host.is_some_and(|snap| {
                snap.checks
                    .iter()
                    .any(|h| h.name == c.name && h.status == c.status && h.note == c.note)
            })
        })
        .map(|c| c.name.as_str())
        .collect()
}

pub(super) fn allocated(
    a: &Allocation,
    report: Option<&Report>,
    host: Option<&SystemSnapshot>,
    caller: &Caller,
    ranges: &RangeSet,
) {
    let port = a.port;
    if let Some(r) = report {
        let (c, w) = (r.critical_issues.len(), r.warnings.len());
        let status = r.status.as_str();
        let own = port_findings(r, host);
        if own.is_empty() && r.critical_issues.is_empty() {
            tracing::debug!(
                port,
                "[NETWORK-HARDENING] Status: {status} ({c} critical, {w} warnings)"
            );
        } else {
            tracing::warn!(
                port,
                "[NETWORK-HARDENING] Status: {status} ({c} critical, {w} warnings)"
            );
        }
        if !own.is_empty() {
            // The seed's format: ['time_wait_sockets', 'connection_limits'].
            let names: Vec<String> = own.iter().map(|w| format!("'{w}'")).collect();
            tracing::warn!(
                port,
                "[PORT-MANAGER] Network warnings for port {port}: [{}]",
                names.join(", ")
            );
        }
        if !r.critical_issues.is_empty() {
            tracing::warn!(
                port,
                critical = ?r.critical_issues,
                "[NETWORK-HARDENING] Allocated port {port} despite critical findings ({}): they are not among the blocking checks",
                r.critical_issues.join(", ")
            );
        }
    }
    tracing::info!(
        port,
        service = %a.service,
        purpose = %crate::text::printable(&a.purpose),
        owner = %describe_owner(a),
        ttl_seconds = a.ttl_seconds,
        caller = %describe_caller(caller),
        network_health = %a.network_health,
        "[PORT-MANAGER] ✅ Allocated port {port} for {} from managed range ({ranges})",
        a.service,
    );
}
