//! Client subcommands: each connects, makes one call and renders the answer.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use portwarden_client::proto::network_service_client::NetworkServiceClient;
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::{
    AllocateRequest, GetRequest, HealthRequest, ListRequest, ReleaseRequest, RenewRequest,
    StatusRequest, WatchdogStatusRequest,
};
use portwarden_client::{connect_with, ConnectError, Target};

use super::render::{allocation_block, allocation_json, allocation_table, proto_report, rfc3339};
use super::{Cli, Command};
use crate::config::parse_duration;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{}", describe_status(.0))]
    Rpc(#[from] Status),
    #[error("{field}: {rule}")]
    Usage { field: &'static str, rule: String },
    #[error("{0}")]
    Unhealthy(String),
}

/// "INVALID_ARGUMENT: ... \n  service: must match ..." — the code, the message and the fields.
fn describe_status(s: &Status) -> String {
    let d = s.get_error_details();
    let mut out = format!("{:?}: {}", s.code(), s.message());
    if let Some(br) = d.bad_request() {
        out = format!("{:?}: invalid request", s.code());
        for v in &br.field_violations {
            out += &format!("\n  {}: {}", v.field, v.description);
        }
    }
    if let Some(ri) = d.resource_info() {
        if !ri.owner.is_empty() {
            out += &format!("\n  held by: {}", ri.owner);
        }
    }
    if let Some(q) = d.quota_failure() {
        for v in &q.violations {
            out += &format!("\n  {}: {}", v.subject, v.description);
        }
    }
    out
}

fn ttl_seconds(ttl: &Option<String>) -> Result<Option<u64>, CliError> {
    ttl.as_deref()
        .map(|t| {
            parse_duration(t)
                .map(|d| d.as_secs())
                .map_err(|rule| CliError::Usage {
                    field: "--ttl",
                    rule,
                })
        })
        .transpose()
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub async fn run_client(cli: Cli) -> Result<(), CliError> {
    let target = Target::discover(cli.addr.as_deref());
    let tls = cli.tls.options();
    if let Command::Health(h) = &cli.command {
        return super::health::run(&target, &tls, h).await;
    }
    if let Command::Watch(w) = cli.command {
        return super::events::watch(target, tls, w).await;
    }
    let channel = connect_with(&target, &tls).await?;
    let mut ports = PortsServiceClient::new(channel.clone());
    match cli.command {
        Command::Serve(_)
        | Command::Check(_)
        | Command::Health(_)
        | Command::Watch(_)
        | Command::Run(_) => Ok(()),
        Command::History(h) => super::events::history(channel, h).await,
        Command::Allocate(a) => {
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
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "portwarden-cli".into());
            let reply = ports
                .allocate(AllocateRequest {
                    service: a.service,
                    purpose: a.purpose,
                    started_by,
                    pid: a.pid,
                    port: a.port,
                    ttl_seconds: ttl_seconds(&a.ttl)?,
                    labels,
                    owner_is_caller: false,
                })
                .await?
                .into_inner();
            let alloc = reply.allocation.unwrap_or_default();
            if a.quiet {
                println!("{}", alloc.port);
            } else if a.json {
                let mut v = allocation_json(&alloc);
                v["lease_token"] = reply.lease_token.into();
                v["warnings"] = reply.warnings.into();
                print_json(&v);
            } else {
                println!("✅ Allocated port {}", alloc.port);
                println!("   Service: {}", alloc.service);
                if !alloc.purpose.is_empty() {
                    println!("   Purpose: {}", alloc.purpose);
                }
                if !reply.network_health.is_empty() {
                    println!("   Network Health: {}", reply.network_health);
                }
                for w in &reply.warnings {
                    println!("   ⚠️  {w}");
                }
                println!("   Lease token: {}", reply.lease_token);
            }
            Ok(())
        }
        Command::Release(r) => {
            let reply = ports
                .release(ReleaseRequest {
                    port: r.port,
                    lease_token: r.token.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let service = reply.allocation.map(|a| a.service).unwrap_or_default();
            let until = rfc3339(reply.quarantined_until.as_ref()).unwrap_or_default();
            println!(
                "Released port {} (was {service}); quarantined until {until}",
                r.port
            );
            Ok(())
        }
        Command::Renew(r) => {
            let reply = ports
                .renew(RenewRequest {
                    port: r.port,
                    lease_token: r.token.unwrap_or_default(),
                    ttl_seconds: ttl_seconds(&r.ttl)?,
                    requests_delta: r.requests,
                    errors_delta: r.errors,
                })
                .await?
                .into_inner();
            let a = reply.allocation.unwrap_or_default();
            if r.json {
                print_json(&allocation_json(&a));
            } else {
                print!("{}", allocation_block(&a));
            }
            Ok(())
        }
        Command::Get(g) => {
            let a = ports
                .get(GetRequest { port: g.port })
                .await?
                .into_inner()
                .allocation
                .unwrap_or_default();
            if g.json {
                print_json(&allocation_json(&a));
            } else {
                print!("{}", allocation_block(&a));
            }
            Ok(())
        }
        Command::List(l) => {
            let list = ports
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
                println!("no allocations");
            } else {
                print!("{}", allocation_table(&list));
            }
            Ok(())
        }
        Command::Status(s) => status(ports, channel, s.json).await,
    }
}

/// The operator's report. Sections whose service is not built yet say so instead of guessing.
async fn status(
    mut ports: PortsServiceClient<tonic::transport::Channel>,
    channel: tonic::transport::Channel,
    json: bool,
) -> Result<(), CliError> {
    let st = ports.status(StatusRequest {}).await?.into_inner();
    let list = ports
        .list(ListRequest::default())
        .await?
        .into_inner()
        .allocations;
    let watchdog = WatchdogServiceClient::new(channel.clone())
        .status(WatchdogStatusRequest {})
        .await;
    let network = NetworkServiceClient::new(channel)
        .health(HealthRequest { port: None })
        .await;
    let unavailable = |r: &Status| r.code() == Code::Unimplemented;
    let ranges: Vec<String> = st
        .ranges
        .iter()
        .map(|r| {
            if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            }
        })
        .collect();
    if json {
        let mut v = serde_json::json!({
            "ranges": ranges,
            "total": st.total,
            "allocated": st.allocated,
            "available": st.available,
            "quarantined": st.quarantined,
            "unavailable": st.unavailable,
            "warnings": st.warnings,
            "allocations": list.iter().map(allocation_json).collect::<Vec<_>>(),
        });
        v["watchdog"] = match &watchdog {
            Ok(w) => {
                let w = w.get_ref();
                serde_json::json!({
                    "running": w.running,
                    "interval_seconds": w.interval_ms as f64 / 1000.0,
                    "checks_performed": w.checks_performed,
                    "issues_detected": w.issues_detected,
                    "reclaimed": w.reclaimed,
                    "last_run": rfc3339(w.last_run.as_ref()),
                    "last_run_duration_ms": w.last_run_duration_ms,
                    "subscribers": w.subscribers,
                    "last_sequence": w.last_sequence,
                })
            }
            Err(e) => serde_json::json!({"error": e.message()}),
        };
        v["network"] = match &network {
            Ok(n) => {
                let r = n.get_ref().report.clone().unwrap_or_default();
                serde_json::json!({
                    "status": r.status().as_str_name().trim_start_matches("OVERALL_STATUS_").to_lowercase(),
                    "critical_issues": r.critical_issues,
                    "warnings": r.warnings,
                    "checks": r.checks.iter().map(|c| (c.name.clone(), serde_json::json!({
                        "status": c.status().as_str_name().trim_start_matches("CHECK_STATUS_").to_lowercase(),
                        "note": c.note,
                    }))).collect::<serde_json::Map<_, _>>(),
                })
            }
            Err(e) => serde_json::json!({"error": e.message()}),
        };
        print_json(&v);
        return Ok(());
    }
    let rule = "=".repeat(70);
    println!("{rule}\nPORTWARDEN PORT & NETWORK STATUS\n{rule}\n");
    println!("PORT MANAGER\n------------");
    println!("Port Range: {}", ranges.join(", "));
    println!("Allocated: {} / {} ports", st.allocated, st.total);
    println!("Available: {} ports", st.available);
    if st.quarantined > 0 {
        println!(
            "Quarantined: {} ports (released less than {} s ago)",
            st.quarantined, st.quarantine_seconds
        );
    }
    if st.unavailable > 0 {
        println!(
            "Unavailable: {} ports (in use outside portwarden or blocked)",
            st.unavailable
        );
    }
    for w in &st.warnings {
        println!("⚠️  {w}");
    }
    for a in &list {
        println!();
        print!("{}", allocation_block(a));
    }
    println!("\nWATCHDOG\n--------");
    match &watchdog {
        Ok(w) => {
            let w = w.get_ref();
            println!(
                "Running: {}\nInterval: {}s\nChecks Performed: {}\nIssues Detected: {}\nReclaimed: {}",
                if w.running { "True" } else { "False" },
                w.interval_ms as f64 / 1000.0,
                w.checks_performed,
                w.issues_detected,
                w.reclaimed
            );
            if let Some(at) = rfc3339(w.last_run.as_ref()) {
                println!("Last Pass: {at} ({:.1} ms)", w.last_run_duration_ms);
            }
        }
        Err(e) if unavailable(e) => println!("Not available: {}", e.message()),
        Err(e) => println!("Error: {}", describe_status(e)),
    }
    println!("\nNETWORK HEALTH\n--------------");
    match &network {
        Ok(n) => print!(
            "{}",
            proto_report(&n.get_ref().report.clone().unwrap_or_default())
        ),
        Err(e) if unavailable(e) => println!("Not available: {}", e.message()),
        Err(e) => println!("Error: {}", describe_status(e)),
    }
    println!("\n{rule}");
    Ok(())
}
