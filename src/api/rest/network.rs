//! `/api/ports/network/...`: the diagnostics over REST, rendered by the domain's seed-shaped
//! JSON (`Report::to_seed_json`, `IoStats::to_seed_json`, `CheckResult::to_seed_json`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::Value;

use super::error::{ApiError, ErrorBody};
use super::extract::Peer;
use super::ports::bad_query;
use super::types::HealthQuery;
use super::RestState;
use crate::network;
use crate::ports::{port_number, PortsError};
use crate::wire::{CheckDoc, ExhaustionDoc, ReportDoc, StatsDoc};

/// Runs a diagnostic for `caller` on the diagnostics pool (bounded per caller).
async fn blocking<T: Send + 'static>(
    s: &RestState,
    caller: &crate::ports::Caller,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    Ok(s.diagnostics.run(caller, f).await?)
}

/// The full diagnostic report, from the current system snapshot (at most 5 s old; `fresh=true`
/// takes a new one), with the per-port checks of `port` when given.
#[utoipa::path(get, path = "/api/ports/network/health", tag = "network", params(HealthQuery),
    responses(
        (status = 200, description = "The report", body = ReportDoc),
        (status = 400, description = "Not a port number", body = ErrorBody),
        (status = 429, description = "Too many diagnostics running or waiting, for this caller or in all", body = ErrorBody),
    ))]
pub async fn health(
    State(s): State<RestState>,
    Peer(caller): Peer,
    query: Result<Query<HealthQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let port = q
        .port
        .map(|p| port_number("port", p))
        .transpose()
        .map_err(|v| PortsError::Invalid(vec![v]))?;
    let fresh = q.fresh.unwrap_or(false);
    let gate = s.gate.clone();
    let report = if !fresh && gate.is_fresh() {
        gate.report(port, false)
    } else {
        blocking(&s, &caller, move || gate.report(port, fresh)).await?
    };
    Ok(Json(report.to_seed_json()))
}

/// Network I/O counters (in total and per interface) and TCP connections by state.
#[utoipa::path(get, path = "/api/ports/network/stats", tag = "network",
    responses(
        (status = 200, description = "Counters", body = StatsDoc),
        (status = 429, description = "Too many diagnostics running or waiting, for this caller or in all", body = ErrorBody),
    ))]
pub async fn stats(
    State(s): State<RestState>,
    Peer(caller): Peer,
) -> Result<Json<Value>, ApiError> {
    let stats = blocking(&s, &caller, network::io_stats).await?;
    Ok(Json(stats.to_seed_json()))
}

/// Ephemeral port usage (`ip_local_port_range`): warning above 60 %, critical above 80 %.
#[utoipa::path(get, path = "/api/ports/network/port-exhaustion", tag = "network",
    responses(
        (status = 200, description = "The port_exhaustion check", body = ExhaustionDoc),
        (status = 429, description = "Too many diagnostics running or waiting, for this caller or in all", body = ErrorBody),
    ))]
pub async fn port_exhaustion(
    State(s): State<RestState>,
    Peer(caller): Peer,
) -> Result<Json<Value>, ApiError> {
    let gate = s.gate.clone();
    let check = blocking(&s, &caller, move || network::port_exhaustion(gate.config())).await?;
    Ok(Json(check.to_seed_json()))
}

/// TLS certificate readiness of the configured certificate and key.
#[utoipa::path(get, path = "/api/ports/network/ssl-readiness", tag = "network",
    responses(
        (status = 200, description = "The ssl_readiness check", body = CheckDoc),
        (status = 429, description = "Too many diagnostics running or waiting, for this caller or in all", body = ErrorBody),
    ))]
pub async fn ssl_readiness(
    State(s): State<RestState>,
    Peer(caller): Peer,
) -> Result<Json<Value>, ApiError> {
    let gate = s.gate.clone();
    let check = blocking(&s, &caller, move || network::tls_readiness(gate.config())).await?;
    Ok(Json(check.to_seed_json()))
}
