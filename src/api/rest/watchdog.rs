//! `/api/ports/watchdog/...`: the watchdog's status, and its events as Server-Sent Events — the
//! same feed as gRPC Watch (filters, resume from the log, snapshot), one SSE event per event:
//! `id: <sequence>`, `event: <kind>`, `data: <the event's JSON>`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::Peer;
use super::ports::bad_query;
use super::types::WatchdogStatusJson;
use super::RestState;
use crate::api::lagging::{Behind, LagProbe};
use crate::events::EventKind;
use crate::ports::{self, Feed, FeedItem, PortsError, WatchStart};
use crate::wire::{self, timestamp as rfc3339};

/// A comment line this often keeps proxies and clients from timing out an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The watchdog's state: passes, issues found, reclaims, watchers, the event log's bounds.
#[utoipa::path(get, path = "/api/ports/watchdog/status", tag = "watchdog",
    responses((status = 200, description = "The watchdog's state", body = WatchdogStatusJson)))]
pub async fn status(State(s): State<RestState>) -> Json<WatchdogStatusJson> {
    Json(WatchdogStatusJson::new(&s.watchdog.status()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events of this service.
    pub service: Option<String>,
    /// Only events of this port.
    #[param(minimum = 1, maximum = 65535)]
    pub port: Option<u32>,
    /// Only events of these kinds, comma-separated (allocated, released, renewed, reclaimed,
    /// health_changed, squatter_seen, squatter_gone, outside_listener_seen,
    /// outside_listener_gone, connections_leaking, network_status_changed, pass_completed).
    pub kind: Option<String>,
    /// Resume: every logged event after this sequence first (the `Last-Event-ID` header, when
    /// present, wins). 0 starts at the oldest kept.
    pub since: Option<u64>,
    /// First the current allocations (`event: existing`), then `event: snapshot_complete`, then
    /// live events.
    pub snapshot: Option<bool>,
}

fn kinds(list: Option<&str>) -> Result<Vec<EventKind>, ApiError> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            EventKind::parse(k)
                .ok_or_else(|| ApiError::invalid("kind", format!("'{k}' is not an event kind")))
        })
        .collect()
}

/// An SSE `data:` line: the wire object, as `watch --json` prints it.
fn data(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn sse_item(item: FeedItem) -> SseEvent {
    match item {
        FeedItem::Event(e) => SseEvent::default()
            .id(e.sequence.to_string())
            .event(e.kind().as_str())
            .data(data(&wire::Event::from(&*e))),
        FeedItem::Existing(a) => {
            SseEvent::default()
                .event("existing")
                .data(data(&wire::SnapshotEntry::new(wire::Allocation::new(
                    &a, None,
                ))))
        }
        FeedItem::SnapshotComplete { sequence } => SseEvent::default()
            .id(sequence.to_string())
            .event("snapshot_complete")
            .data(data(&wire::SnapshotComplete::new(sequence))),
        // Ended before it is rendered (see `fell_behind`).
        FeedItem::FellBehind(_) => SseEvent::default().comment("fell behind"),
    }
}

/// The last event of a stream that fell behind: `event: reset` whose id is where a reconnect
/// (Last-Event-ID) resumes; without one (a snapshot cut short) the reconnect starts over.
fn fell_behind(why: Behind, feed: &Feed) -> SseEvent {
    let resume = feed.resume_after();
    let reset = wire::Reset::new(why.message(resume), resume, None);
    let reset = SseEvent::default().event("reset").data(data(&reset));
    match resume {
        Some(n) => reset.id(n.to_string()),
        None => reset,
    }
}

/// The next SSE event, or None once the stream has ended: a keep-alive comment while nothing
/// happens; a watcher whose connection has too much unread, or whose queue overflowed, gets
/// [`fell_behind`] and is ended.
async fn next_event(feed: &mut Option<Feed>, lag: &LagProbe) -> Option<SseEvent> {
    let f = feed.as_mut()?;
    let why = match lag.behind() {
        Some(why) => why,
        None => {
            let next = tokio::select! {
                n = f.next() => n,
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    return Some(SseEvent::default().comment("keep-alive"));
                }
            };
            match next {
                Some(Ok(FeedItem::FellBehind(n))) => Behind::Events(n),
                Some(Ok(item)) => return Some(sse_item(item)),
                // The daemon stops, or the log could not be read: the client reconnects.
                Some(Err(_)) | None => {
                    *feed = None;
                    return None;
                }
            }
        }
    };
    let last = fell_behind(why, f);
    *feed = None;
    Some(last)
}

/// The feed as SSE events, after `first` when there is one.
fn stream(
    first: Option<SseEvent>,
    feed: Feed,
    lag: LagProbe,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(
        (first, Some(feed), lag),
        |(first, mut feed, lag)| async move {
            if let Some(e) = first {
                return Some((Ok(e), (None, feed, lag)));
            }
            let event = next_event(&mut feed, &lag).await?;
            Some((Ok(event), (None, feed, lag)))
        },
    )
}

/// The watchdog's events as Server-Sent Events, live, resumed, or after a snapshot.
#[utoipa::path(get, path = "/api/ports/watchdog/events", tag = "watchdog", params(EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence")),
    responses(
        (status = 200, description = "`text/event-stream`: `id:` the sequence, `event:` the kind, `data:` the event's JSON; `event: reset` when the position to resume from was compacted, or as the last event of a stream that fell behind (its id is the Last-Event-ID to reconnect with)",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad filter", body = ErrorBody),
        (status = 421, description = "A Host that is not the daemon's (plaintext TCP)", body = ErrorBody),
        (status = 429, description = "Too many event streams (in all, for this user, or outside the operators' reserve)", body = ErrorBody),
    ))]
pub async fn events(
    State(s): State<RestState>,
    Peer(caller): Peer,
    lag: LagProbe,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let filter = ports::event_filter(
        q.service.filter(|s| !s.is_empty()),
        q.port,
        kinds(q.kind.as_deref())?,
    )?;
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::invalid("Last-Event-ID", "must be an event's sequence number")
                })?,
        ),
        None => None,
    };
    let start = WatchStart::requested(
        q.snapshot.unwrap_or(false),
        last_event_id.or(q.since),
        "since (or Last-Event-ID)",
    )?;
    let (feed, first) = match s
        .allocator
        .watch(filter.clone(), start, &caller, lag.on_stuck())
    {
        Ok(feed) => (feed, None),
        // The position is gone (compacted) or unknown (another daemon's): say so, then follow
        // live events from here; the reset's id is where a reconnect resumes.
        Err(e @ (PortsError::Compacted { .. } | PortsError::AheadOfLog { .. })) => {
            let feed = s
                .allocator
                .watch(filter, WatchStart::Live, &caller, lag.on_stuck())?;
            let reset = wire::Reset::new(
                format!("{e}; re-read /api/ports/allocations, live events follow"),
                Some(feed.position()),
                Some(s.allocator.log_bounds().oldest_retained()),
            );
            let reset = SseEvent::default()
                .id(feed.position().to_string())
                .event("reset")
                .data(data(&reset));
            (feed, Some(reset))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Sse::new(stream(first, feed, lag)).into_response())
}

impl WatchdogStatusJson {
    pub fn new(w: &crate::watchdog::WatchdogStatus) -> Self {
        Self {
            running: w.running,
            interval_seconds: w.interval.as_secs_f64(),
            checks_performed: w.passes,
            issues_detected: w.issues_detected,
            reclaimed: w.reclaimed,
            last_run: w.last_pass_at_ms.map(rfc3339),
            last_run_duration_ms: w.last_pass_duration_ms,
            subscribers: w.watchers,
            oldest_retained_sequence: w.oldest_retained_sequence,
            last_sequence: w.last_sequence,
            network_status: w.network_status.clone(),
            io_rates: w.rates.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        }
    }
}
