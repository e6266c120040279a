//! `portwarden who PORT...`: who has each port, in or out of the managed ranges: free,
//! allocated to a service, used by a process outside portwarden, resting after release, or
//! refused by the host (CheckPorts).

use tonic::transport::Channel;

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{CheckPortsRequest, PortCheck, PortState};

use super::commands::{print_json, CliError};
use super::exit;
use super::render::p;
use super::WhoArgs;

pub async fn run(channel: Channel, args: WhoArgs) -> Result<u8, CliError> {
    let results = PortsServiceClient::new(channel)
        .check_ports(CheckPortsRequest {
            ports: args.ports.iter().map(|p| u32::from(*p)).collect(),
        })
        .await?
        .into_inner()
        .results;
    if args.json {
        let checks: Vec<_> = results.iter().map(super::decode::port_check).collect();
        print_json(&checks);
    } else {
        let width = results
            .iter()
            .map(|c| c.port.to_string().len())
            .max()
            .unwrap_or(0);
        for c in &results {
            outln!("{:<width$}  {}", c.port, line(c));
        }
    }
    Ok(exit::OK)
}

/// "allocated to service web (pid 4242)", "used by pid 812 (nginx) outside portwarden", ...
fn line(c: &PortCheck) -> String {
    let outside = if c.in_managed_range {
        ""
    } else {
        " (outside the managed ranges)"
    };
    let text = match c.state() {
        PortState::Free => "free".to_string(),
        PortState::OutsideRange => "free, but outside the managed ranges".to_string(),
        PortState::Allocated => format!("allocated to {}", p(&c.holder)),
        PortState::Quarantined => format!("resting after release: {}", p(&c.reason)),
        PortState::InUse if !c.holder.is_empty() => {
            format!("used by {} outside portwarden{outside}", p(&c.holder))
        }
        // The daemon names every listener it finds (or why it cannot): none was found, so a
        // socket that is bound without listening holds the port.
        PortState::InUse => format!(
            "used outside portwarden{outside} (no listener found: {})",
            p(&c.reason)
        ),
        PortState::Blocked => format!("blocked: {}{outside}", p(&c.reason)),
        PortState::Unknown | PortState::Unspecified => format!("unknown: {}", p(&c.reason)),
    };
    text
}
