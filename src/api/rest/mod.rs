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
mod projects;
mod types;
mod watchdog;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Extension;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{details_json, http_status, ApiError, ErrorBody, ErrorCode, ErrorMessage};
pub use extract::LEASE_TOKEN_HEADER;

use super::observe::{tag_route, RestRoutes};
use crate::config::MAX_MESSAGE_BYTES;
use crate::metrics::Metrics;
use crate::network::NetworkGate;
use crate::ports::Allocator;
use crate::watchdog::Watchdog;

/// What the REST handlers call.
#[derive(Clone)]
pub struct RestState {
    pub allocator: Arc<Allocator>,
    pub gate: Arc<NetworkGate>,
    pub metrics: Arc<Metrics>,
    pub watchdog: Arc<Watchdog>,
    pub daemon: Arc<crate::daemon_info::DaemonInfo>,
    /// Where diagnostics run, bounded per caller.
    pub diagnostics: Arc<crate::api::diagnostics::DiagnosticPool>,
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
        (name = "network", description = "Network diagnostics (the original API's JSON shapes)"),
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
        .routes(routes!(projects::list, projects::forget))
        .routes(routes!(watchdog::status))
        .routes(routes!(watchdog::events))
        .routes(routes!(network::health))
        .routes(routes!(network::stats))
        .routes(routes!(network::port_exhaustion))
        .routes(routes!(network::ssl_readiness))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::openapi))
}

/// The OpenAPI 3.1 document of every REST path (what `/api/openapi.json` serves, and what is
/// checked in at `docs/openapi.json`), as pretty JSON with a final newline.
pub fn openapi_json() -> String {
    document(routes().split_for_parts().1)
}

/// Renders the document, with links from a new allocation to what can be done with it (for
/// OpenAPI tools, and schemathesis's stateful tests). The links are added to the JSON: utoipa
/// 5 writes a link's `operationId` as `operation_id`.
fn document(api: OpenApiDoc) -> String {
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    let port = "$response.body#/allocation/port";
    let token = "$response.body#/lease_token";
    let mut links = serde_json::Map::new();
    for (name, operation, with_token) in [
        ("GetAllocation", "get", false),
        ("ReleaseAllocation", "release", true),
        ("RenewAllocation", "renew", true),
    ] {
        let mut parameters = serde_json::json!({ "path.port": port });
        if with_token {
            parameters["header.X-Lease-Token"] = token.into();
        }
        links.insert(
            name.to_string(),
            serde_json::json!({ "operationId": operation, "parameters": parameters }),
        );
    }
    if let Some(created) = doc.pointer_mut("/paths/~1api~1ports~1allocations/post/responses/201") {
        created["links"] = links.into();
    }
    let mut json = serde_json::to_string_pretty(&doc).unwrap_or_default();
    json.push('\n');
    json
}

/// The REST router, ready to merge with the gRPC routes.
pub fn router(state: RestState) -> axum::Router {
    let (router, api) = routes().split_for_parts();
    let labels = RestRoutes::new(api.paths.paths.keys().map(String::as_str));
    let json = document(api);
    router
        .method_not_allowed_fallback(meta::method_not_allowed)
        .route_layer(from_fn(super::guard::rest_requests))
        .route_layer(from_fn_with_state(labels, tag_route))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .layer(Extension(meta::OpenApiJson(Arc::new(json))))
        .with_state(state)
}
