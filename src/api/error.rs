//! Domain errors -> gRPC status with `google.rpc` details naming what went wrong.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::network::{CheckStatus, Report};
use crate::ports::PortsError;

pub const DOMAIN: &str = "portwarden.dev";

pub fn status_from(err: PortsError) -> Status {
    let message = err.to_string();
    let mut d = ErrorDetails::new();
    let code = match err {
        PortsError::Invalid(violations) => {
            for v in violations {
                d.add_bad_request_violation(v.field, v.rule);
            }
            Code::InvalidArgument
        }
        PortsError::NotAllocated { port, resting } => {
            let description = match resting {
                Some(_) => "not allocated: resting after release (quarantine)",
                None => "not allocated",
            };
            d.set_resource_info("port", port.to_string(), "", description);
            Code::NotFound
        }
        PortsError::LeaseDead { port, reason } => {
            d.set_resource_info("port", port.to_string(), "", reason);
            Code::NotFound
        }
        PortsError::HeldBy { port, service, pid } => {
            let owner = match pid {
                Some(pid) => format!("service {service} (pid {pid})"),
                None => format!("service {service}"),
            };
            d.set_resource_info("port", port.to_string(), owner, "allocated by portwarden");
            Code::AlreadyExists
        }
        PortsError::InUse {
            port,
            detail,
            holder,
        } => {
            let owner = holder.unwrap_or_else(|| "a process outside portwarden".into());
            d.set_resource_info("port", port.to_string(), owner, detail);
            Code::AlreadyExists
        }
        PortsError::Blocked {
            port,
            detail,
            report,
        } => {
            d.add_precondition_failure_violation("FIREWALL", format!("port {port}"), detail);
            if let Some(report) = report {
                d.set_error_info("PORT_BLOCKED", DOMAIN, report_metadata(&report));
            }
            Code::FailedPrecondition
        }
        PortsError::NetworkCritical { report, blocking } => {
            for c in report
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Critical && blocking.contains(&c.name))
            {
                d.add_precondition_failure_violation(
                    "NETWORK",
                    c.name.clone(),
                    crate::network::blocking::explain(c),
                );
            }
            d.set_error_info("NETWORK_CRITICAL", DOMAIN, report_metadata(&report));
            Code::FailedPrecondition
        }
        PortsError::Token(e) => {
            tracing::error!(error = %e, "cannot draw a lease token");
            return Status::internal(message);
        }
        PortsError::Quarantined {
            port,
            remaining_ms,
            last_service,
        } => {
            d.add_precondition_failure_violation(
                "QUARANTINE",
                format!("port {port}"),
                format!("released by '{last_service}'; rests {remaining_ms} ms more"),
            );
            d.set_retry_info(Some(Duration::from_millis(remaining_ms)));
            Code::FailedPrecondition
        }
        PortsError::Exhausted {
            held,
            quarantined,
            unavailable,
            holders,
            ranges,
            first_free_in_ms,
            ..
        } => {
            if let Some(ms) = first_free_in_ms {
                d.set_retry_info(Some(Duration::from_millis(ms)));
            }
            for (service, n) in holders {
                d.add_quota_failure_violation(
                    format!("service {service}"),
                    format!("holds {n} port(s)"),
                );
            }
            d.set_error_info(
                "RANGE_EXHAUSTED",
                DOMAIN,
                [
                    ("ranges".to_string(), ranges),
                    ("held".to_string(), held.to_string()),
                    ("quarantined".to_string(), quarantined.to_string()),
                    ("unavailable".to_string(), unavailable.to_string()),
                ],
            );
            Code::ResourceExhausted
        }
        PortsError::PermissionDenied { port, reason } => {
            d.set_error_info(
                "LEASE_NOT_AUTHORIZED",
                DOMAIN,
                [
                    ("port".to_string(), port.to_string()),
                    ("reason".to_string(), reason),
                ],
            );
            Code::PermissionDenied
        }
        PortsError::Compacted {
            requested,
            oldest_retained,
        } => {
            d.set_error_info(
                "EVENTS_COMPACTED",
                DOMAIN,
                [
                    ("requested".to_string(), requested.to_string()),
                    ("oldest_retained".to_string(), oldest_retained.to_string()),
                ],
            );
            Code::OutOfRange
        }
        PortsError::AheadOfLog { requested, last } => {
            d.set_error_info(
                "SEQUENCE_AHEAD",
                DOMAIN,
                [
                    ("requested".to_string(), requested.to_string()),
                    ("last".to_string(), last.to_string()),
                ],
            );
            Code::OutOfRange
        }
        PortsError::Watch(e) => match e {
            crate::events::SubscribeError::Closing => Code::Unavailable,
            limited => {
                let key = limited.limit_key().unwrap_or("max_watchers");
                d.add_quota_failure_violation(key, limited.to_string());
                Code::ResourceExhausted
            }
        },
        PortsError::QuotaExceeded {
            quota,
            subject,
            held,
            limit,
        } => {
            d.add_quota_failure_violation(
                subject.clone(),
                format!("holds {held} of at most {limit} ports ({quota})"),
            );
            d.set_error_info(
                "QUOTA_EXCEEDED",
                DOMAIN,
                [
                    ("quota".to_string(), quota.to_string()),
                    ("subject".to_string(), subject),
                    ("held".to_string(), held.to_string()),
                    ("limit".to_string(), limit.to_string()),
                ],
            );
            Code::ResourceExhausted
        }
        PortsError::NameTaken { service, owner_uid } => {
            d.set_error_info(
                "SERVICE_NAME_TAKEN",
                DOMAIN,
                [
                    ("service".to_string(), service),
                    ("owner_uid".to_string(), owner_uid.to_string()),
                ],
            );
            Code::PermissionDenied
        }
        PortsError::ProjectNotYours { project, owner_uid } => {
            d.set_error_info(
                "PROJECT_NOT_OWNED",
                DOMAIN,
                [
                    ("project".to_string(), project),
                    ("owner_uid".to_string(), owner_uid.to_string()),
                ],
            );
            Code::PermissionDenied
        }
        PortsError::CallerUnknown { what } => {
            d.add_precondition_failure_violation(
                "CALLER_IDENTITY",
                what,
                "the caller's uid is known over the Unix socket and loopback TCP only",
            );
            Code::FailedPrecondition
        }
        PortsError::Unavailable { .. } => {
            d.set_retry_info(Some(Duration::from_secs(1)));
            Code::Unavailable
        }
        PortsError::Store(e) if e.is_storage() => {
            // A full or failing disk: nothing wrong with the request; retry once it is fixed.
            d.set_retry_info(Some(Duration::from_secs(5)));
            return Status::with_error_details(
                Code::Unavailable,
                format!("the state database cannot be written ({e}); the change was not made"),
                d,
            );
        }
        PortsError::Store(e) => {
            tracing::error!(error = %e, "state store failure");
            return Status::internal(format!("state store: {e}"));
        }
    };
    Status::with_error_details(code, message, d)
}

/// The whole report, as the seed's JSON, in ErrorInfo metadata (`report`), so a client that
/// was refused can show every check.
fn report_metadata(report: &Report) -> [(String, String); 2] {
    [
        ("status".to_string(), report.status.as_str().to_string()),
        ("report".to_string(), report.to_seed_json().to_string()),
    ]
}
