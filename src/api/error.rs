//! Domain errors -> gRPC status with `google.rpc` details naming what went wrong.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::ports::PortsError;

const DOMAIN: &str = "portwarden.dev";

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
        PortsError::NotAllocated { port } => {
            d.set_resource_info("port", port.to_string(), "", "not allocated");
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
        PortsError::InUse { port, detail } => {
            d.set_resource_info(
                "port",
                port.to_string(),
                "a process outside portwarden",
                detail,
            );
            Code::AlreadyExists
        }
        PortsError::Blocked { port, detail } => {
            d.add_precondition_failure_violation("FIREWALL", format!("port {port}"), detail);
            Code::FailedPrecondition
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
        } => {
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
        PortsError::Store(e) => {
            tracing::error!(error = %e, "state store failure");
            return Status::internal(format!("state store: {e}"));
        }
    };
    Status::with_error_details(code, message, d)
}
