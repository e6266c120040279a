//! The REST gateway for curl users: the design's `/api/ports/...` paths, `/metrics` and
//! `/api/openapi.json`, on the same listeners as gRPC. Handlers are as thin as the gRPC ones
//! and call the same domain functions; errors go through the same domain -> status mapping
//! and are rendered as grpc-gateway renders them (`error.rs`). The OpenAPI document is
//! generated from the handlers and their types (utoipa).

mod body_error;
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
    ),
    components(schemas(
        crate::wire::Event,
        crate::wire::SnapshotEntry,
        crate::wire::SnapshotComplete,
        crate::wire::Reset
    ))
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

/// The OpenAPI 3.2 document of every REST path (what `/api/openapi.json` serves, and what is
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
    // The wire objects send every key (null when unknown): say so.
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for name in WIRE_OBJECTS {
            if let Some(schema) = schemas.get_mut(*name) {
                require_every_key(schema);
            }
        }
    }
    // Each item of the event stream described as OpenAPI 3.2 does (`itemSchema`), which utoipa
    // cannot write: `data:` holds the JSON of the object its `event:` names.
    doc["openapi"] = "3.2.0".into();
    if let Some(ok) = doc.pointer_mut("/paths/~1api~1ports~1watchdog~1events/get/responses/200") {
        ok["content"] =
            serde_json::json!({ "text/event-stream": { "itemSchema": sse_item_schema() } });
    }
    let mut json = serde_json::to_string_pretty(&doc).unwrap_or_default();
    json.push('\n');
    json
}

/// The schemas of `crate::wire`: objects whose every key is always sent.
const WIRE_OBJECTS: &[&str] = &[
    "Allocation",
    "Observation",
    "ProcessStats",
    "PortCheck",
    "PortHealth",
    "Event",
    "SnapshotEntry",
    "SnapshotComplete",
    "Reset",
    "Allocated",
    "Released",
];

/// Marks every property of an object schema (or of each `allOf` part) required.
fn require_every_key(schema: &mut serde_json::Value) {
    if let Some(parts) = schema.get_mut("allOf").and_then(|p| p.as_array_mut()) {
        parts.iter_mut().for_each(require_every_key);
    }
    let keys: Vec<serde_json::Value> = match schema.get("properties").and_then(|p| p.as_object()) {
        Some(props) => props.keys().map(|k| k.as_str().into()).collect(),
        None => return,
    };
    schema["required"] = keys.into();
}

/// One Server-Sent Event of `/api/ports/watchdog/events`: its `event:` and the schema of its
/// `data:`.
fn sse_item_schema() -> serde_json::Value {
    let kinds: Vec<&str> = crate::events::EventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let branch = |event: serde_json::Value, schema: &str| {
        serde_json::json!({
            "properties": {
                "event": event,
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": { "$ref": format!("#/components/schemas/{schema}") },
                },
            },
        })
    };
    serde_json::json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "id": { "type": "string", "description": "The sequence; `Last-Event-ID` resumes after it" },
            "event": { "type": "string" },
            "data": { "type": "string" },
        },
        "oneOf": [
            branch(serde_json::json!({ "enum": kinds }), "Event"),
            branch(serde_json::json!({ "const": "existing" }), "SnapshotEntry"),
            branch(serde_json::json!({ "const": "snapshot_complete" }), "SnapshotComplete"),
            branch(serde_json::json!({ "const": "reset" }), "Reset"),
        ],
    })
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
