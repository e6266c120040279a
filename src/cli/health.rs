//! `portwarden health`: one gRPC health check, for container and Kubernetes probes. Exit 0 when
//! the daemon (or the named service) is SERVING, 2 when it answers anything else (NOT_SERVING
//! while it stops), 3 when it cannot be reached within the timeout.

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::commands::CliError;
use super::connect::{connect, Attempt, Unreachable};
use super::exit;
use super::units::parse_duration;
use super::HealthArgs;

pub async fn run(args: &HealthArgs) -> Result<u8, CliError> {
    let timeout = parse_duration("--timeout", &args.timeout)?;
    if timeout.is_zero() {
        return Err(CliError::Usage {
            field: "--timeout",
            rule: format!("'{}' is not a positive duration (e.g. 3s)", args.timeout),
        });
    }
    let check = async {
        let (target, channel) = connect(&args.conn).await?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?;
        Ok::<_, CliError>((target, reply.into_inner().status()))
    };
    let (target, status) = tokio::time::timeout(timeout, check).await.map_err(|_| {
        CliError::Unreachable(Unreachable {
            attempts: vec![Attempt {
                target: args.conn.addr.clone().unwrap_or_default(),
                problem: format!("no health answer within {}", args.timeout),
            }],
            waited: None,
        })
    })??;
    let name = status.as_str_name();
    if args.json {
        super::commands::print_json(&serde_json::json!({ "status": name }));
    } else if status == ServingStatus::Serving {
        outln!("{name}");
    }
    if status == ServingStatus::Serving {
        Ok(exit::OK)
    } else {
        Err(CliError::NotServing(format!("{target}: {name}")))
    }
}
