//! `/api/ports/...`: the port manager over REST. Thin, like the gRPC PortsService: read the
//! caller, map the request, call the same allocator function, map the answer.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{port_param, JsonBody, LeaseToken, MaybeJsonBody, Peer};
use super::types::*;
use super::RestState;
use crate::ports;
use crate::wire::{self, Allocated, Released};

/// A path or query that axum could not read: 400 naming what was wrong.
pub(super) fn bad_path(r: PathRejection) -> ApiError {
    ApiError::invalid("path", r.body_text())
}

pub(super) fn bad_query(r: QueryRejection) -> ApiError {
    ApiError::invalid("query", r.body_text())
}

fn path_port(path: Result<Path<String>, PathRejection>) -> Result<u32, ApiError> {
    let Path(raw) = path.map_err(bad_path)?;
    port_param(&raw)
}

/// The managed ranges: how many ports are allocated, free, resting and unavailable.
#[utoipa::path(get, path = "/api/ports/status", tag = "ports",
    responses((status = 200, description = "The port manager's summary", body = StatusJson)))]
pub async fn status(State(s): State<RestState>) -> Json<StatusJson> {
    Json(StatusJson::new(
        s.allocator.status(),
        s.allocator.test_pool_status(),
        &s.watchdog.status(),
        &s.daemon,
    ))
}

/// Every allocation with its metadata, optionally only one service's.
#[utoipa::path(get, path = "/api/ports/allocations", tag = "ports", params(ListQuery),
    responses(
        (status = 200, description = "The allocations, by port", body = AllocationList),
        (status = 400, description = "A bad service name", body = ErrorBody),
    ))]
pub async fn list(
    State(s): State<RestState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<AllocationList>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let service = ports::service_filter(q.service)?;
    let allocations = s.allocator.list(service.as_deref());
    Ok(Json(AllocationList {
        allocations: allocations.iter().map(wire::Allocation::from).collect(),
    }))
}

/// Allocates a port: the service's previous one when free, else the least recently used free
/// port, after the network checks. The lease token in the reply releases and renews it.
#[utoipa::path(post, path = "/api/ports/allocations", tag = "ports", request_body = AllocateBody,
    responses(
        (status = 201, description = "Allocated; `Location` names it", body = Allocated,
            headers(("Location" = String, description = "/api/ports/allocations/{port}"))),
        (status = 200, description = "With `reuse` or `project`: the caller's existing allocation", body = Allocated,
            headers(("Location" = String, description = "/api/ports/allocations/{port}"))),
        (status = 400, description = "A field broke a rule, the port is quarantined or blocked, or the host's network is critical", body = ErrorBody),
        (status = 403, description = "A cross-site request from a web page", body = ErrorBody),
        (status = 409, description = "The requested port is held", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 429, description = "No free port in the managed ranges (or the test pool)", body = ErrorBody),
    ))]
pub async fn allocate(
    State(s): State<RestState>,
    Peer(caller): Peer,
    JsonBody(body): JsonBody<AllocateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let req = ports::AllocateRequest {
        service: body.service,
        purpose: body.purpose.unwrap_or_default(),
        started_by: body.started_by.unwrap_or_default(),
        pid: body.pid,
        port: body.port,
        ttl_seconds: body.ttl_seconds,
        labels: body.labels.unwrap_or_default(),
        owner_is_caller: body.owner_is_caller.unwrap_or(false),
        owner_identity: None,
        derived_service: false,
        reuse: body.reuse.unwrap_or(false),
        prefer: body.prefer,
        pool: body.pool.map(Into::into).unwrap_or_default(),
        project: body.project.filter(|p| !p.is_empty()),
    };
    let granted = super::super::allocate_off_runtime(&s.allocator, req, caller)
        .await
        .map_err(|e| ApiError::new(tonic::Status::internal(format!("task failed: {e}"))))??;
    let location = format!("/api/ports/allocations/{}", granted.allocation.port);
    let reply = Allocated::from(&granted);
    // An existing allocation handed back is not a new resource.
    let code = if granted.reused {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, [(header::LOCATION, location)], Json(reply)))
}

/// One allocation.
#[utoipa::path(get, path = "/api/ports/allocations/{port}", tag = "ports",
    params(("port" = u32, Path, description = "The allocated port", minimum = 1, maximum = 65535)),
    responses(
        (status = 200, description = "The allocation", body = wire::Allocation),
        (status = 400, description = "Not a port of the managed ranges", body = ErrorBody),
        (status = 404, description = "Not allocated", body = ErrorBody),
    ))]
pub async fn get(
    State(s): State<RestState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<wire::Allocation>, ApiError> {
    let port = path_port(path)?;
    Ok(Json(wire::Allocation::from(&s.allocator.get(port)?)))
}

/// Releases a port; it rests in quarantine before another service gets it. Needs the lease
/// token, except over the Unix socket for root or the uid that allocated it.
#[utoipa::path(delete, path = "/api/ports/allocations/{port}", tag = "ports",
    params(
        ("port" = u32, Path, description = "The allocated port", minimum = 1, maximum = 65535),
        ("X-Lease-Token" = Option<String>, Header, description = "The lease token from the allocation"),
    ),
    responses(
        (status = 200, description = "Released", body = Released),
        (status = 400, description = "Not a port of the managed ranges", body = ErrorBody),
        (status = 403, description = "No or a wrong lease token, or a cross-site request", body = ErrorBody),
        (status = 404, description = "Not allocated", body = ErrorBody),
    ))]
pub async fn release(
    State(s): State<RestState>,
    Peer(caller): Peer,
    LeaseToken(token): LeaseToken,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Released>, ApiError> {
    let port = path_port(path)?;
    let released = s.allocator.release(port, token.as_deref(), &caller)?;
    Ok(Json(Released::from(&released)))
}

/// Renews a lease (and adds to the allocation's counters). Token as for release.
#[utoipa::path(post, path = "/api/ports/allocations/{port}/renew", tag = "ports",
    params(
        ("port" = u32, Path, description = "The allocated port", minimum = 1, maximum = 65535),
        ("X-Lease-Token" = Option<String>, Header, description = "The lease token from the allocation"),
    ),
    request_body(content = Option<RenewBody>, description = "Optional"),
    responses(
        (status = 200, description = "Renewed", body = wire::Allocation),
        (status = 400, description = "A bad field or port", body = ErrorBody),
        (status = 403, description = "No or a wrong lease token, or a cross-site request", body = ErrorBody),
        (status = 404, description = "Not allocated, or its owner died", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
    ))]
pub async fn renew(
    State(s): State<RestState>,
    Peer(caller): Peer,
    LeaseToken(token): LeaseToken,
    path: Result<Path<String>, PathRejection>,
    MaybeJsonBody(body): MaybeJsonBody<RenewBody>,
) -> Result<Json<wire::Allocation>, ApiError> {
    let port = path_port(path)?;
    let req = ports::RenewRequest {
        port,
        lease_token: token,
        ttl_seconds: body.ttl_seconds,
        requests_delta: body.requests_delta.unwrap_or(0),
        errors_delta: body.errors_delta.unwrap_or(0),
        convert_to_lease: body.convert_to_lease.unwrap_or(false),
    };
    Ok(Json(wire::Allocation::from(
        &s.allocator.renew(req, &caller)?,
    )))
}

/// Health of every allocated port: its owner's health (seen listening or not) and the free
/// check's verdict (CheckPorts).
#[utoipa::path(get, path = "/api/ports/health-check", tag = "ports",
    responses(
        (status = 200, description = "Every allocated port", body = HealthCheckJson),
        (status = 429, description = "Too many diagnostics running or waiting, for this caller or in all", body = ErrorBody),
    ))]
pub async fn health_check(
    State(s): State<RestState>,
    Peer(caller): Peer,
) -> Result<Json<HealthCheckJson>, ApiError> {
    let allocator = s.allocator.clone();
    let (allocations, verdicts) = s
        .diagnostics
        .run(&caller, move || {
            let allocations = allocator.list(None);
            let ports: Vec<u16> = allocations.iter().map(|a| a.port).collect();
            let verdicts = allocator.check_ports(&ports, &caller);
            (allocations, verdicts)
        })
        .await?;
    let mut by_health = std::collections::BTreeMap::new();
    for a in &allocations {
        *by_health.entry(a.health.as_str().to_string()).or_insert(0) += 1;
    }
    Ok(Json(HealthCheckJson {
        total: allocations.len(),
        by_health,
        ports: allocations
            .iter()
            .zip(&verdicts)
            .map(|(a, v)| PortHealthJson::new(a, v))
            .collect(),
    }))
}
