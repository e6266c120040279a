//! The REST gateway for curl users: the design's `/api/ports/...` paths, `/metrics` and
//! `/api/openapi.json`, on the same listeners as gRPC. Handlers are as thin as the gRPC ones
//! and call the same domain functions; errors go through the same domain -> status mapping
//! and are rendered as grpc-gateway renders them (`error.rs`). The OpenAPI document is
//! generated from the handlers and their types (utoipa).

mod error;
mod extract;
mod meta;
mod network;
mod ports;
mod types;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Extension;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{http_status, ApiError, ErrorBody, ErrorCode};
pub use extract::LEASE_TOKEN_HEADER;

use super::observe::{tag_route, RestRoutes};
use crate::config::MAX_MESSAGE_BYTES;
use crate::metrics::Metrics;
use crate::network::NetworkGate;
use crate::ports::Allocator;

/// What the REST handlers call.
#[derive(Clone)]
pub struct RestState {
    pub allocator: Arc<Allocator>,
    pub gate: Arc<NetworkGate>,
    pub metrics: Arc<Metrics>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "portwarden",
        description = "REST gateway of the portwarden daemon: the same operations as its gRPC \
            API, for curl users. Errors are `{\"code\", \"message\", \"details\"}` with the gRPC \
            code and its google.rpc details; the HTTP status follows grpc-gateway's mapping.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "ports", description = "Allocations of the managed port ranges"),
        (name = "network", description = "Network diagnostics (the seed's JSON shapes)"),
        (name = "watchdog", description = "The allocation watchdog"),
        (name = "meta", description = "Metrics and this document"),
    )
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ports::status))
        .routes(routes!(ports::list, ports::allocate))
        .routes(routes!(ports::get, ports::release))
        .routes(routes!(ports::renew))
        .routes(routes!(ports::health_check))
        .routes(routes!(meta::watchdog_status))
        .routes(routes!(meta::watchdog_events))
        .routes(routes!(network::health))
        .routes(routes!(network::stats))
        .routes(routes!(network::port_exhaustion))
        .routes(routes!(network::ssl_readiness))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::openapi))
}

/// Links from an allocation to what can be done with it (used by OpenAPI tools, and by
/// schemathesis's stateful tests).
fn add_links(api: &mut OpenApiDoc) {
    let Some(item) = api.paths.paths.get_mut("/api/ports/allocations") else {
        return;
    };
    let Some(post) = item.post.as_mut() else {
        return;
    };
    let Some(RefOr::T(created)) = post.responses.responses.get_mut("201") else {
        return;
    };
    let port = "$response.body#/allocation/port";
    let token = "$response.body#/lease_token";
    for (name, operation, with_token) in [
        ("GetAllocation", "get", false),
        ("ReleaseAllocation", "release", true),
        ("RenewAllocation", "renew", true),
    ] {
        let mut link = LinkBuilder::new()
            .operation_id(operation)
            .parameter("port", port);
        if with_token {
            link = link.parameter("header.X-Lease-Token", token);
        }
        created
            .links
            .insert(name.to_string(), RefOr::T(link.build()));
    }
}

/// The OpenAPI 3.1 document of every REST path (what `/api/openapi.json` serves).
pub fn openapi() -> OpenApiDoc {
    let (_, mut api) = routes().split_for_parts();
    add_links(&mut api);
    api
}

/// [`openapi`] as pretty JSON with a final newline, as checked in at `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The REST router, ready to merge with the gRPC routes.
pub fn router(state: RestState) -> axum::Router {
    let (router, mut api) = routes().split_for_parts();
    add_links(&mut api);
    let mut route_list = Vec::new();
    for (path, item) in &api.paths.paths {
        for (method, op) in [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ] {
            if op {
                route_list.push((method, path.as_str()));
            }
        }
    }
    let labels = RestRoutes::new(route_list);
    let mut json = api.to_pretty_json().unwrap_or_default();
    json.push('\n');
    router
        .method_not_allowed_fallback(meta::method_not_allowed)
        .route_layer(from_fn(super::guard::rest_writes))
        .route_layer(from_fn_with_state(labels, tag_route))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .layer(Extension(meta::OpenApiJson(Arc::new(json))))
        .with_state(state)
}
