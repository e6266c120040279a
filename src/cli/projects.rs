//! `portwarden ports --project DIR` (the ports a project remembers, and what holds each now) and
//! `portwarden forget --project DIR` (release them and forget them).

use serde_json::{json, Value};

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{ForgetProjectRequest, ProjectPort, ProjectPortState};

use super::commands::{print_json, CliError};
use super::connect::connect;
use super::exit;
use super::project::{env_var, ProjectArg};
use super::render::{allocation_json, p, rfc3339};

#[derive(Debug, clap::Args)]
pub struct PortsArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: super::CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: super::CommandClientArgs,
}

fn state_name(s: ProjectPortState) -> &'static str {
    match s {
        ProjectPortState::Held => "held",
        ProjectPortState::Free => "free",
        ProjectPortState::Taken => "taken",
        ProjectPortState::Unspecified => "forgotten",
    }
}

/// One record as `ports --json` and `forget --json` print it.
fn port_json(r: &ProjectPort) -> Value {
    json!({
        "name": r.name,
        "variable": env_var(&r.name),
        "port": r.port,
        "service": r.service,
        "state": state_name(r.state()),
        "holder": (!r.holder.is_empty()).then_some(&r.holder),
        "allocation": r.allocation.as_ref().map(allocation_json),
        "updated_at": rfc3339(r.updated_at.as_ref()),
    })
}

/// "held by web.shop (process 4242)", "free: comes back next time", ...
fn state_text(r: &ProjectPort) -> String {
    match r.state() {
        ProjectPortState::Held => {
            let owner = r
                .allocation
                .as_ref()
                .map(|a| match a.pid {
                    None => "kept until forgotten".to_string(),
                    Some(pid) => format!("while process {pid} runs"),
                })
                .unwrap_or_default();
            format!("held by this project ({owner})")
        }
        ProjectPortState::Free => "free: the project gets it back next time".into(),
        ProjectPortState::Taken => format!(
            "taken by {}: the project gets another port next time",
            p(&r.holder)
        ),
        ProjectPortState::Unspecified => "forgotten".into(),
    }
}

pub async fn ports(args: PortsArgs) -> Result<u8, CliError> {
    let project = args.project.resolve()?;
    let (_, channel) = connect(&args.conn).await?;
    let list = super::project::list(&mut PortsServiceClient::new(channel), &project).await?;
    if args.json {
        print_json(&json!({
            "project": project,
            "ports": list.iter().map(port_json).collect::<Vec<_>>(),
        }));
        return Ok(exit::OK);
    }
    if list.is_empty() {
        outln!(
            "no ports remembered for {} (portwarden allocate NAME --project, env or up make them)",
            p(&project)
        );
        return Ok(exit::OK);
    }
    outln!("{}", p(&project));
    let width = list.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    outln!(
        "  {:<width$}  {:<5}  {:<16}  STATE",
        "NAME",
        "PORT",
        "SERVICE"
    );
    for r in &list {
        outln!(
            "  {:<width$}  {:<5}  {:<16}  {}",
            p(&r.name),
            r.port,
            p(&r.service),
            state_text(r)
        );
    }
    Ok(exit::OK)
}

pub async fn forget(args: ForgetArgs) -> Result<u8, CliError> {
    let project = args.project.resolve()?;
    let (_, channel) = connect(&args.conn).await?;
    let reply = PortsServiceClient::new(channel)
        .forget_project(ForgetProjectRequest {
            project: project.clone(),
        })
        .await?
        .into_inner();
    if args.json {
        print_json(&json!({
            "project": project,
            "forgotten": reply.forgotten.iter().map(port_json).collect::<Vec<_>>(),
            "released": reply.released.iter().map(allocation_json).collect::<Vec<_>>(),
        }));
        return Ok(exit::OK);
    }
    if reply.forgotten.is_empty() {
        outln!("no ports remembered for {}: nothing to forget", p(&project));
        return Ok(exit::OK);
    }
    let names: Vec<String> = reply
        .forgotten
        .iter()
        .map(|r| format!("{} {}", p(&r.name), r.port))
        .collect();
    outln!(
        "Forgot {} port(s) of {}: {}",
        names.len(),
        p(&project),
        names.join(", ")
    );
    if !reply.released.is_empty() {
        let ports: Vec<String> = reply.released.iter().map(|a| a.port.to_string()).collect();
        outln!("Released {}", ports.join(", "));
    }
    Ok(exit::OK)
}
