//! `portwarden health`: one gRPC health check, for container and Kubernetes probes. Exit 0 when
//! the daemon (or the named service) is SERVING; anything else, including no answer within the
//! timeout, is exit 1.

use portwarden_client::{connect_with, Target, TlsOptions};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::commands::CliError;
use super::HealthArgs;
use crate::config::parse_duration;

pub async fn run(target: &Target, tls: &TlsOptions, args: &HealthArgs) -> Result<(), CliError> {
    let timeout = parse_duration(&args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| CliError::Usage {
            field: "--timeout",
            rule: format!("'{}' is not a positive duration (e.g. 3s)", args.timeout),
        })?;
    let check = async {
        let channel = connect_with(target, tls).await?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?;
        Ok::<_, CliError>(reply.into_inner().status())
    };
    let status = tokio::time::timeout(timeout, check).await.map_err(|_| {
        CliError::Unhealthy(format!(
            "no health answer from {target} within {}",
            args.timeout
        ))
    })??;
    let name = status.as_str_name();
    if status == ServingStatus::Serving {
        println!("{name}");
        Ok(())
    } else {
        Err(CliError::Unhealthy(format!("{target}: {name}")))
    }
}
