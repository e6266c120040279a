//! `portwarden watch` and `portwarden history`: the daemon's events, live or from its log.

use futures_util::StreamExt;
use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::{EventKind, HistoryRequest, WatchRequest};
use tonic::transport::Channel;

use super::commands::CliError;
use super::render::{allocation_block, event_line};
use super::{HistoryArgs, WatchArgs};
use crate::wire;

/// "health_changed" -> EVENT_KIND_HEALTH_CHANGED; the retired NETWORK_ISSUE is refused.
#[allow(deprecated)]
fn kind(name: &str) -> Result<i32, CliError> {
    let wire = format!("EVENT_KIND_{}", name.to_ascii_uppercase().replace('-', "_"));
    EventKind::from_str_name(&wire)
        .filter(|k| !matches!(k, EventKind::Unspecified | EventKind::NetworkIssue))
        .map(|k| k as i32)
        .ok_or_else(|| CliError::Usage {
            field: "--kind",
            rule: format!(
                "'{name}' is not an event kind (allocated, released, renewed, reclaimed, \
                 health_changed, squatter_seen, squatter_gone, outside_listener_seen, \
                 outside_listener_gone, connections_leaking, network_status_changed, \
                 pass_completed)"
            ),
        })
}

fn kinds(names: &[String]) -> Result<Vec<i32>, CliError> {
    names.iter().map(|n| kind(n)).collect()
}

/// Follows events until interrupted, reconnecting (and resuming) when the daemon restarts.
pub async fn watch(a: WatchArgs) -> Result<u8, CliError> {
    // The first connection says where the daemon is (and why not, if it is nowhere).
    let (target, _) = super::connect::connect(&a.conn).await?;
    let tls = a.conn.tls();
    let request = WatchRequest {
        kinds: kinds(&a.kinds)?,
        service: a.service.unwrap_or_default(),
        port: a.port,
        since_sequence: a.since,
        snapshot: a.snapshot,
    };
    let stream = portwarden_client::watch(target, tls, request);
    tokio::pin!(stream);
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = tokio::signal::ctrl_c() => return Ok(super::exit::OK),
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(status)) => return Err(CliError::Rpc(status)),
            None => return Ok(super::exit::OK),
        };
        if let Some(e) = &msg.event {
            if a.json {
                outln!("{}", compact(&super::decode::event(e)));
            } else {
                outln!("{}", event_line(e));
            }
        } else if let Some(existing) = &msg.existing {
            if a.json {
                let entry = wire::SnapshotEntry::new(super::decode::allocation(existing));
                outln!("{}", compact(&entry));
            } else {
                out!("{}", allocation_block(existing));
            }
        } else if msg.snapshot_complete {
            if a.json {
                let done = wire::SnapshotComplete::new(msg.snapshot_sequence);
                outln!("{}", compact(&done));
            } else {
                outln!(
                    "-- current allocations as of event {}; live events follow --",
                    msg.snapshot_sequence
                );
            }
        }
    }
}

/// One line of `watch --json`: the object SSE sends as `data:`.
fn compact(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Logged events of a port or a service, newest first.
pub async fn history(channel: Channel, a: HistoryArgs) -> Result<u8, CliError> {
    if a.port.is_none() && a.service.is_none() {
        return Err(CliError::Usage {
            field: "PORT",
            rule: "give a port or --service".into(),
        });
    }
    let mut client = WatchdogServiceClient::new(channel);
    let mut token = String::new();
    let mut shown = 0usize;
    let mut out = Vec::new();
    while shown < a.limit {
        let page = client
            .history(HistoryRequest {
                port: a.port,
                service: a.service.clone().unwrap_or_default(),
                kinds: kinds(&a.kinds)?,
                page_size: (a.limit - shown).min(1000) as u32,
                page_token: token.clone(),
            })
            .await?
            .into_inner();
        shown += page.events.len();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    if a.json {
        let list: Vec<wire::Event> = out.iter().map(super::decode::event).collect();
        super::commands::print_json(&list);
    } else if out.is_empty() {
        outln!("no events");
    } else {
        for e in &out {
            outln!("{}", event_line(e));
        }
    }
    Ok(super::exit::OK)
}
