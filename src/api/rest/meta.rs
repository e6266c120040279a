//! The paths about the daemon itself: `/metrics`, `/api/openapi.json`, and the answer to a
//! method a path does not take.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::error::ApiError;
use super::RestState;

/// The OpenAPI document, rendered once when the router is built.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<String>);

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)))]
pub async fn metrics(State(s): State<RestState>) -> Result<Response, ApiError> {
    let m = s.metrics.clone();
    let text = tokio::task::spawn_blocking(move || m.encode())
        .await
        .map_err(|e| tonic::Status::internal(format!("metrics task failed: {e}")))?
        .map_err(|_| tonic::Status::internal("cannot render the metrics"))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

/// This document: OpenAPI 3.1 for every path.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
pub async fn openapi(Extension(OpenApiJson(json)): Extension<OpenApiJson>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.as_str().to_string(),
    )
        .into_response()
}

/// A path answered, but not with this method: 405 with the JSON error body.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(tonic::Status::unimplemented(format!(
        "{} does not take {method}; see /api/openapi.json",
        uri.path()
    )))
    .with_http(StatusCode::METHOD_NOT_ALLOWED)
}
