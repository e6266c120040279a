//! Exit codes and how a failed command reports itself: a few lines of text on stderr (the
//! message, the offending fields, and how to fix it when there is a known fix), or, with
//! `--json`, one `{"code", "message", "details"}` object on stdout, the REST error shape.

use serde_json::{json, Value};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::commands::CliError;

pub const OK: u8 = 0;
/// check/status: a warning; also any refusal without a code of its own.
pub const WARNING: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const NOT_FOUND: u8 = 4;
pub const EXHAUSTED: u8 = 5;
pub const DENIED: u8 = 6;
/// sysexits.h EX_USAGE.
pub const USAGE: u8 = 64;

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Unreachable(_) => UNREACHABLE,
            CliError::Connect(_) | CliError::Usage { .. } => USAGE,
            CliError::NotServing(_) => CRITICAL,
            CliError::NotReady { answered: true, .. } => CRITICAL,
            CliError::NotReady {
                answered: false, ..
            } => UNREACHABLE,
            CliError::Rpc(s) => match s.code() {
                Code::NotFound => NOT_FOUND,
                Code::ResourceExhausted => EXHAUSTED,
                Code::PermissionDenied | Code::Unauthenticated => DENIED,
                Code::InvalidArgument | Code::OutOfRange => USAGE,
                Code::Unavailable => UNREACHABLE,
                Code::FailedPrecondition if network_critical(s) => CRITICAL,
                _ => WARNING,
            },
        }
    }

    /// The error as the REST API renders errors: `{"code", "message", "details"}`.
    pub fn to_json(&self) -> Value {
        match self {
            CliError::Rpc(s) => json!({
                "code": s.code() as i32,
                "message": s.message(),
                "details": crate::api::rest::details_json(s),
            }),
            CliError::Unreachable(u) => json!({
                "code": Code::Unavailable as i32,
                "message": self.to_string(),
                "details": [{
                    "@type": tonic_types::ErrorInfo::TYPE_URL,
                    "reason": "DAEMON_UNREACHABLE",
                    "domain": "portwarden.dev",
                    "metadata": u.attempts.iter().map(|a| (a.target.clone(), serde_json::Value::from(a.problem.clone())))
                        .collect::<serde_json::Map<_, _>>(),
                }],
            }),
            CliError::Usage { field, rule } => json!({
                "code": Code::InvalidArgument as i32,
                "message": self.to_string(),
                "details": [{
                    "@type": tonic_types::BadRequest::TYPE_URL,
                    "field_violations": [{"field": field, "description": rule}],
                }],
            }),
            CliError::Connect(_) => json!({
                "code": Code::InvalidArgument as i32,
                "message": self.to_string(),
                "details": [],
            }),
            CliError::NotServing(_) => json!({
                "code": Code::Unavailable as i32,
                "message": self.to_string(),
                "details": [],
            }),
            CliError::NotReady { .. } => json!({
                "code": Code::DeadlineExceeded as i32,
                "message": self.to_string(),
                "details": [],
            }),
        }
    }

    /// The error for a person: the message, the fields, the holder, and the fix.
    pub fn to_text(&self) -> String {
        match self {
            CliError::Rpc(s) => describe_status(s),
            other => format!("error: {other}"),
        }
    }
}

/// A refusal because the host's network is critical (an exit code of its own).
fn network_critical(s: &Status) -> bool {
    s.get_error_details()
        .error_info()
        .is_some_and(|i| i.reason == "NETWORK_CRITICAL")
}

/// "error: invalid request\n  service: must match ..." — the message, the fields, the holder
/// and, when there is one, the fix.
pub fn describe_status(s: &Status) -> String {
    let d = s.get_error_details();
    let mut out = format!("error: {}", s.message());
    if let Some(br) = d.bad_request() {
        out = "error: invalid request".to_string();
        for v in &br.field_violations {
            out += &format!("\n  {}: {}", v.field, v.description);
        }
    }
    if let Some(ri) = d.resource_info() {
        if !ri.owner.is_empty() && !s.message().contains(&ri.owner) {
            out += &format!("\n  held by: {}", ri.owner);
        }
    }
    if let Some(hint) = hint(s, &d) {
        out += &format!("\n  hint: {hint}");
    }
    out
}

fn hint(s: &Status, d: &tonic_types::ErrorDetails) -> Option<String> {
    let precondition = |t: &str| {
        d.precondition_failure()
            .is_some_and(|p| p.violations.iter().any(|v| v.r#type == t))
    };
    let reason = d.error_info().map(|i| i.reason.as_str());
    match s.code() {
        // The message already says whose name it is and what to do.
        Code::PermissionDenied
            if matches!(reason, Some("SERVICE_NAME_TAKEN" | "PROJECT_NOT_OWNED")) =>
        {
            None
        }
        Code::PermissionDenied if s.message().contains("does not match") => Some(
            "use the lease token that allocate printed for this port (allocate --json keeps it)"
                .into(),
        ),
        Code::PermissionDenied => Some(
            "release or renew as the user that allocated it (over the Unix socket or loopback \
             TCP), or pass --token; the token was printed by allocate (use --json to keep it)"
                .into(),
        ),
        Code::FailedPrecondition if precondition("CALLER_IDENTITY") => Some(format!(
            "connect over the Unix socket (--addr unix:{}) or loopback TCP, where the daemon knows \
             who you are",
            portwarden_client::SYSTEM_SOCKET
        )),
        Code::FailedPrecondition if precondition("QUARANTINE") => {
            let wait = d
                .retry_info()
                .and_then(|r| r.retry_delay)
                .map(|t| format!(" in {} s", t.as_secs_f64().ceil()))
                .unwrap_or_default();
            Some(format!(
                "try again{wait}, or use --prefer instead of --port to take another port meanwhile"
            ))
        }
        Code::AlreadyExists => Some(
            "`portwarden who PORT` tells who has it; --prefer takes another port when it is taken"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status_from;
    use crate::ports::PortsError;

    #[test]
    fn every_refusal_has_its_exit_code() {
        let code = |e: PortsError| CliError::Rpc(status_from(e)).exit_code();
        assert_eq!(
            code(PortsError::NotAllocated {
                port: 1,
                resting: None
            }),
            NOT_FOUND
        );
        assert_eq!(
            code(PortsError::PermissionDenied {
                port: 1,
                reason: "x".into()
            }),
            DENIED
        );
        assert_eq!(code(PortsError::invalid("service", "bad")), USAGE);
        assert_eq!(
            code(PortsError::Exhausted {
                pool: crate::ports::Pool::Service,
                ranges: "1-2".into(),
                total: 2,
                held: 2,
                quarantined: 0,
                first_free_in_ms: None,
                unavailable: 0,
                holders: vec![],
            }),
            EXHAUSTED
        );
        let critical = crate::network::Report::from_checks(
            vec![crate::network::CheckResult::new(
                "ipv4_available",
                crate::network::CheckStatus::Critical,
                "no IPv4",
            )],
            std::time::Duration::ZERO,
        );
        assert_eq!(
            code(PortsError::NetworkCritical {
                report: Box::new(critical),
                blocking: vec!["ipv4_available".into()],
            }),
            CRITICAL
        );
        assert_eq!(
            CliError::Usage {
                field: "--ttl",
                rule: "x".into()
            }
            .exit_code(),
            USAGE
        );
    }

    #[test]
    fn a_token_refusal_says_how_to_fix_it() {
        let s = status_from(PortsError::PermissionDenied {
            port: 8000,
            reason: "the caller is not identified and gave no lease token".into(),
        });
        let text = describe_status(&s);
        assert!(
            text.contains("release or renew as the user that allocated it (over the Unix socket or loopback TCP), or pass --token; the token was printed by allocate (use --json to keep it)"),
            "{text}"
        );
    }
}
