//! WatchdogService: the watchdog's status, the event stream (Watch) and the event history, over
//! the same domain calls the REST gateway uses.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use tonic_types::{ErrorDetails, StatusExt};

use super::convert;
use super::diagnostics::DiagnosticPool;
use super::error::status_from;
use super::lagging::{Behind, LagProbe};
use crate::daemon_info::DaemonInfo;
use crate::events::EventKind;
use crate::network::NetworkGate;
use crate::ports::{self, Allocator, Feed, FeedItem, FieldViolation, PortsError, WatchStart};
use crate::proto::watchdog_service_server::WatchdogService;
use crate::proto::*;
use crate::watchdog::Watchdog;

/// History page size when the request names none.
const DEFAULT_HISTORY_PAGE: u32 = 50;

#[derive(Clone)]
pub struct WatchdogApi {
    allocator: Arc<Allocator>,
    watchdog: Arc<Watchdog>,
    /// Where History reads the log and Overview runs the network checks, bounded per caller.
    diagnostics: Arc<DiagnosticPool>,
    /// Overview's network checks.
    gate: Arc<NetworkGate>,
    /// Overview describes the daemon, as Status does.
    daemon: Arc<DaemonInfo>,
}

impl WatchdogApi {
    pub fn new(
        allocator: Arc<Allocator>,
        watchdog: Arc<Watchdog>,
        diagnostics: Arc<DiagnosticPool>,
        gate: Arc<NetworkGate>,
        daemon: Arc<DaemonInfo>,
    ) -> Self {
        Self {
            allocator,
            watchdog,
            diagnostics,
            gate,
            daemon,
        }
    }
}

/// Wire kinds -> domain kinds; an unknown or retired kind names its index.
fn kinds(wire: &[i32]) -> Result<Vec<EventKind>, Status> {
    let mut bad = Vec::new();
    let mut out = Vec::new();
    for (i, k) in wire.iter().enumerate() {
        match convert::event_kind_from(*k) {
            Some(kind) => out.push(kind),
            None => bad.push(FieldViolation::new(
                format!("kinds[{i}]"),
                format!("{k} is not an event kind this daemon sends"),
            )),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(status_from(PortsError::Invalid(bad)))
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn rates(r: &crate::watchdog::IoRate) -> IoRates {
    IoRates {
        bytes_sent_per_second: r.bytes_sent_per_s,
        bytes_recv_per_second: r.bytes_recv_per_s,
        packets_sent_per_second: r.packets_sent_per_s,
        packets_recv_per_second: r.packets_recv_per_s,
        errors_in_per_second: r.errors_in_per_s,
        errors_out_per_second: r.errors_out_per_s,
        drops_in_per_second: r.drops_in_per_s,
        drops_out_per_second: r.drops_out_per_s,
    }
}

fn watch_response(item: FeedItem) -> WatchResponse {
    match item {
        FeedItem::Existing(a) => WatchResponse {
            existing: Some(convert::allocation_view(&a)),
            ..Default::default()
        },
        FeedItem::SnapshotComplete { sequence } => WatchResponse {
            snapshot_complete: true,
            snapshot_sequence: sequence,
            ..Default::default()
        },
        FeedItem::Event(e) => WatchResponse {
            event: Some(convert::event(&e)),
            ..Default::default()
        },
        // Ended before it is rendered (see `fell_behind`).
        FeedItem::FellBehind(_) => WatchResponse::default(),
    }
}

/// The last word of a watcher that fell behind: RESOURCE_EXHAUSTED naming where to resume
/// (ErrorInfo `WATCHER_BEHIND`, metadata `since_sequence` when there is one).
fn fell_behind(why: Behind, feed: &Feed) -> Status {
    let resume = feed.resume_after();
    let metadata: std::collections::HashMap<String, String> = resume
        .map(|n| ("since_sequence".to_string(), n.to_string()))
        .into_iter()
        .collect();
    Status::with_error_details(
        tonic::Code::ResourceExhausted,
        why.message(resume),
        ErrorDetails::with_error_info("WATCHER_BEHIND", super::error::DOMAIN, metadata),
    )
}

/// The next answer of a Watch stream, or None once it has ended. A watcher whose connection
/// has too much unread, or whose queue overflowed, gets [`fell_behind`] and is ended.
async fn next_answer(
    feed: &mut Option<Feed>,
    lag: &LagProbe,
) -> Option<Result<WatchResponse, Status>> {
    let f = feed.as_mut()?;
    let answer = match lag.behind() {
        Some(why) => Err(fell_behind(why, f)),
        None => match f.next().await? {
            Ok(FeedItem::FellBehind(n)) => Err(fell_behind(Behind::Events(n), f)),
            Ok(item) => return Some(Ok(watch_response(item))),
            Err(e) => Err(status_from(e)),
        },
    };
    // The feed (and its queue) goes at once; the answer is the stream's last.
    *feed = None;
    Some(answer)
}

#[tonic::async_trait]
impl WatchdogService for WatchdogApi {
    async fn status(
        &self,
        _: Request<WatchdogStatusRequest>,
    ) -> Result<Response<WatchdogStatusResponse>, Status> {
        Ok(Response::new(status_response(&self.watchdog)))
    }

    async fn overview(
        &self,
        req: Request<OverviewRequest>,
    ) -> Result<Response<OverviewResponse>, Status> {
        let caller = super::caller::caller_of(req.extensions());
        let gate = self.gate.clone();
        // Fresh, as NetworkService.Health; a refusal leaves the rest of the answer standing.
        let network = self
            .diagnostics
            .run(&caller, move || gate.report(None, true))
            .await;
        let (network, network_error_code, network_error) = match network {
            Ok(report) => (Some(convert::report(&report)), 0, String::new()),
            Err(refused) => (None, refused.code() as i32, refused.message().to_string()),
        };
        Ok(Response::new(OverviewResponse {
            ports: Some(super::ports::status_response(&self.allocator, &self.daemon)),
            allocations: self
                .allocator
                .list(None)
                .iter()
                .map(convert::allocation)
                .collect(),
            watchdog: Some(status_response(&self.watchdog)),
            network,
            network_error_code,
            network_error,
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = super::caller::caller_of(req.extensions());
        let (_, extensions, r) = req.into_parts();
        let filter = ports::event_filter(non_empty(r.service), r.port, kinds(&r.kinds)?)
            .map_err(status_from)?;
        let start = WatchStart::requested(r.snapshot, r.since_sequence, "since_sequence")
            .map_err(status_from)?;
        let lag = LagProbe::of(&extensions);
        let feed = self
            .allocator
            .watch(filter, start, &caller, lag.on_stuck())
            .map_err(status_from)?;
        let stream =
            futures_util::stream::unfold((Some(feed), lag), |(mut feed, lag)| async move {
                let answer = next_answer(&mut feed, &lag).await?;
                Some((answer, (feed, lag)))
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn history(
        &self,
        req: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let caller = super::caller::caller_of(req.extensions());
        let r = req.into_inner();
        let service = non_empty(r.service);
        if service.is_none() && r.port.is_none() {
            return Err(status_from(PortsError::invalid(
                "port",
                "give a port, a service or both",
            )));
        }
        let filter = ports::event_filter(service, r.port, kinds(&r.kinds)?).map_err(status_from)?;
        let before = match r.page_token.as_str() {
            "" => 0,
            t => t.parse::<u64>().map_err(|_| {
                status_from(PortsError::invalid(
                    "page_token",
                    "not a token this daemon gave (use next_page_token as is)",
                ))
            })?,
        };
        let page = match r.page_size {
            0 => DEFAULT_HISTORY_PAGE,
            n => n.min(ports::MAX_HISTORY_PAGE as u32),
        } as usize;
        let allocator = self.allocator.clone();
        let events = self
            .diagnostics
            .run(&caller, move || allocator.history(&filter, before, page))
            .await?
            .map_err(status_from)?;
        let next_page_token = match events.last() {
            Some(e) if events.len() == page && e.sequence > 1 => e.sequence.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(HistoryResponse {
            events: events.iter().map(convert::event).collect(),
            next_page_token,
        }))
    }
}

/// The watchdog's status as Status (and Overview) answer it.
fn status_response(watchdog: &Watchdog) -> WatchdogStatusResponse {
    let s = watchdog.status();
    let (io, per_interface, over) = match &s.rates {
        Some(r) => (
            Some(rates(&r.total)),
            r.interfaces
                .iter()
                .map(|(name, rate)| InterfaceRates {
                    name: name.clone(),
                    rates: Some(rates(rate)),
                })
                .collect(),
            r.interval_seconds,
        ),
        None => (None, Vec::new(), 0.0),
    };
    WatchdogStatusResponse {
        running: s.running,
        interval_seconds: s.interval.as_secs(),
        interval_ms: s.interval.as_millis() as u64,
        checks_performed: s.passes,
        issues_detected: s.issues_detected,
        reclaimed: s.reclaimed,
        last_run: s.last_pass_at_ms.map(convert::timestamp),
        last_run_duration_ms: s.last_pass_duration_ms,
        subscribers: s.watchers,
        oldest_retained_sequence: s.oldest_retained_sequence,
        last_sequence: s.last_sequence,
        network_status: convert::network_health(&s.network_status) as i32,
        io_rates: io,
        interface_rates: per_interface,
        io_rates_interval_seconds: over,
        unknown_owner_checks: s.unknown_owner_checks,
    }
}
