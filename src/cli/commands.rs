//! Client subcommands: each connects, makes one call and renders the answer.

use std::collections::HashMap;

use tonic::Status;

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{
    AllocateRequest, AllocateResponse, GetRequest, ListRequest, Pool, ReleaseRequest, RenewRequest,
};
use portwarden_client::ConnectError;

use super::args::PoolArg;
use super::connect::{connect, Unreachable};
use super::exit;
use super::render::{allocation_block, allocation_json, allocation_table, owner_line, rfc3339};
use super::units::parse_ttl;
use super::{AllocateArgs, Cli, Command};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No address answered (every one tried, each with its problem).
    #[error("{0}")]
    Unreachable(Unreachable),
    /// A bad address or TLS setting: nothing was tried.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{}", .0.message())]
    Rpc(#[from] Status),
    #[error("{field}: {rule}")]
    Usage { field: &'static str, rule: String },
    /// The daemon answered its health check with something other than SERVING.
    #[error("{0}")]
    NotServing(String),
    /// `wait`: the port was not ready in time (`answered`: it answered HTTP, not 2xx/3xx).
    #[error("{message}")]
    NotReady { message: String, answered: bool },
}

pub fn print_json(v: &impl serde::Serialize) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a client command; the exit code on success (0, or 1/2 for a status that warns).
pub async fn run_client(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        // Run by main.rs itself.
        Command::Serve(_) | Command::Check(_) | Command::Run(_) => Ok(exit::OK),
        #[cfg(unix)]
        Command::Up(_) => Ok(exit::OK),
        Command::Wait(w) => super::wait::run(w).await,
        Command::Env(e) => super::env::run(e).await,
        Command::Ports(p) => super::projects::ports(p).await,
        Command::Forget(f) => super::projects::forget(f).await,
        Command::Health(h) => super::health::run(&h).await,
        Command::Watch(w) => super::events::watch(w).await,
        Command::History(h) => {
            let (_, channel) = connect(&h.conn).await?;
            super::events::history(channel, h).await
        }
        Command::Who(w) => {
            let (_, channel) = connect(&w.conn).await?;
            super::who::run(channel, w).await
        }
        Command::Status(s) => {
            let (_, channel) = connect(&s.conn).await?;
            super::status::run(channel, &s).await
        }
        Command::Allocate(a) => {
            let mut req = allocate_request(&a)?;
            if let Some(dir) = &a.project {
                req.project = super::project::resolve(dir)?;
            }
            let (_, channel) = connect(&a.conn).await?;
            let reply = PortsServiceClient::new(channel)
                .allocate(req)
                .await?
                .into_inner();
            print_allocated(&a, reply);
            Ok(exit::OK)
        }
        Command::Release(r) => {
            let (_, channel) = connect(&r.conn).await?;
            let reply = PortsServiceClient::new(channel)
                .release(ReleaseRequest {
                    port: r.port,
                    lease_token: r.token.resolve()?,
                })
                .await?
                .into_inner();
            let alloc = reply.allocation.clone().unwrap_or_default();
            let until = rfc3339(reply.quarantined_until.as_ref());
            if r.json {
                print_json(&super::decode::released(&reply));
            } else {
                outln!(
                    "Released port {} (was {}); quarantined until {}",
                    r.port,
                    super::render::p(&alloc.service),
                    until.unwrap_or_default()
                );
            }
            Ok(exit::OK)
        }
        Command::Renew(r) => {
            let ttl_seconds = r
                .ttl
                .as_deref()
                .map(|t| parse_ttl("--ttl", t))
                .transpose()?;
            let (_, channel) = connect(&r.conn).await?;
            let a = PortsServiceClient::new(channel)
                .renew(RenewRequest {
                    port: r.port,
                    lease_token: r.token.resolve()?,
                    ttl_seconds,
                    requests_delta: r.requests,
                    errors_delta: r.errors,
                    convert_to_lease: r.convert_to_lease,
                })
                .await?
                .into_inner()
                .allocation
                .unwrap_or_default();
            if r.json {
                print_json(&allocation_json(&a));
            } else {
                out!("{}", allocation_block(&a));
            }
            Ok(exit::OK)
        }
        Command::Get(g) => {
            let (_, channel) = connect(&g.conn).await?;
            let a = PortsServiceClient::new(channel)
                .get(GetRequest { port: g.port })
                .await?
                .into_inner()
                .allocation
                .unwrap_or_default();
            if g.json {
                print_json(&allocation_json(&a));
            } else {
                out!("{}", allocation_block(&a));
            }
            Ok(exit::OK)
        }
        Command::List(l) => {
            let (_, channel) = connect(&l.conn).await?;
            let list = PortsServiceClient::new(channel)
                .list(ListRequest {
                    service: l.service.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .allocations;
            if l.json {
                print_json(&serde_json::Value::Array(
                    list.iter().map(allocation_json).collect(),
                ));
            } else if list.is_empty() {
                outln!("no allocations");
            } else {
                out!("{}", allocation_table(&list));
            }
            Ok(exit::OK)
        }
    }
}

fn allocate_request(a: &AllocateArgs) -> Result<AllocateRequest, CliError> {
    let mut labels = HashMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').ok_or_else(|| CliError::Usage {
            field: "--label",
            rule: format!("'{l}' is not KEY=VALUE"),
        })?;
        labels.insert(k.to_string(), v.to_string());
    }
    let started_by = a
        .started_by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "portwarden-cli".into());
    Ok(AllocateRequest {
        service: a.service.clone(),
        purpose: a.purpose.clone(),
        started_by,
        pid: a.pid,
        port: a.port,
        ttl_seconds: a
            .ttl
            .as_deref()
            .map(|t| parse_ttl("--ttl", t))
            .transpose()?,
        labels,
        owner_is_caller: false,
        reuse: a.reuse,
        prefer: a.prefer,
        pool: match a.pool {
            PoolArg::Service => Pool::Service,
            PoolArg::Test => Pool::Test,
        } as i32,
        project: String::new(),
    })
}

/// The allocation as recorded: port, owner and expiry, labels, network health, the token.
/// Warnings go to stderr (with `--json`, into the JSON), so `PORT=$(... --quiet)` still hears
/// them.
fn print_allocated(a: &AllocateArgs, reply: AllocateResponse) {
    let alloc = reply.allocation.clone().unwrap_or_default();
    let warn = || {
        for w in &reply.warnings {
            eprintln!("warning: {}", super::render::p(w));
        }
    };
    if a.quiet {
        outln!("{}", alloc.port);
        warn();
        return;
    }
    if a.json {
        print_json(&super::decode::allocated(&reply));
        return;
    }
    if reply.reused {
        outln!("✅ Reused port {} (your existing allocation)", alloc.port);
    } else {
        outln!("✅ Allocated port {}", alloc.port);
    }
    outln!("   Service: {}", super::render::p(&alloc.service));
    if !alloc.purpose.is_empty() {
        outln!("   Purpose: {}", super::render::p(&alloc.purpose));
    }
    outln!("   Owner: {}", owner_line(&alloc));
    if !alloc.labels.is_empty() {
        outln!("   Labels: {}", super::render::labels(&alloc));
    }
    if let Some(status) = super::decode::overall_status(reply.network_health) {
        outln!("   Network Health: {}", status.as_str());
    }
    outln!("   Lease token: {}", reply.lease_token);
    warn();
}
