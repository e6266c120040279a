//! REST errors: every one is a gRPC status first (built by the same domain -> status mapping
//! the gRPC services use, `api::error::status_from`), rendered as grpc-gateway does: the HTTP
//! status from the gRPC code and a `{"code", "message", "details"}` body whose details are the
//! status's `google.rpc` details as JSON (proto field names, `@type` as in `google.protobuf.Any`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tonic::{Code, Status};
use tonic_types::{ErrorDetail, StatusExt};
use utoipa::ToSchema;

use crate::api::error::status_from;
use crate::ports::PortsError;

/// The error body of every REST path.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The gRPC status code (3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS, ...).
    pub code: i32,
    /// What went wrong, naming the field or the holder.
    pub message: String,
    /// The `google.rpc` error details gRPC sends, each with its `@type`.
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<Value>,
}

/// The code of an error response, left in the response's extensions for the request metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub Code);

/// The message of an error response, left in the response's extensions for the refusal log.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

/// A refused REST request: a gRPC status, and the HTTP status when it is not the one the code
/// maps to (415 for a wrong content type, 413 for an oversized body).
#[derive(Debug)]
pub struct ApiError {
    status: Status,
    http: Option<StatusCode>,
}

impl ApiError {
    pub fn new(status: Status) -> Self {
        Self { status, http: None }
    }

    /// INVALID_ARGUMENT with a BadRequest violation naming `field`.
    pub fn invalid(field: &str, rule: impl Into<String>) -> Self {
        Self::from(PortsError::invalid(field, rule))
    }

    pub fn with_http(mut self, http: StatusCode) -> Self {
        self.http = Some(http);
        self
    }

    pub fn code(&self) -> Code {
        self.status.code()
    }
}

impl From<PortsError> for ApiError {
    fn from(err: PortsError) -> Self {
        Self::new(status_from(err))
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        Self::new(status)
    }
}

/// grpc-gateway's table (`runtime.HTTPStatusFromCode`).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.status.code();
        let body = ErrorBody {
            code: code as i32,
            message: self.status.message().to_string(),
            details: details_json(&self.status),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.http.unwrap_or_else(|| http_status(code)), bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.extensions_mut().insert(ErrorCode(code));
        response
            .extensions_mut()
            .insert(ErrorMessage(self.status.message().to_string()));
        response
    }
}

/// The status's `google.rpc` details as JSON objects.
pub fn details_json(status: &Status) -> Vec<Value> {
    status
        .get_error_details_vec()
        .into_iter()
        .map(|detail| match detail {
            ErrorDetail::BadRequest(d) => json!({
                "@type": tonic_types::BadRequest::TYPE_URL,
                "field_violations": d.field_violations.iter().map(|v| json!({
                    "field": v.field,
                    "description": v.description,
                })).collect::<Vec<_>>(),
            }),
            ErrorDetail::ResourceInfo(d) => json!({
                "@type": tonic_types::ResourceInfo::TYPE_URL,
                "resource_type": d.resource_type,
                "resource_name": d.resource_name,
                "owner": d.owner,
                "description": d.description,
            }),
            ErrorDetail::PreconditionFailure(d) => json!({
                "@type": tonic_types::PreconditionFailure::TYPE_URL,
                "violations": d.violations.iter().map(|v| json!({
                    "type": v.r#type,
                    "subject": v.subject,
                    "description": v.description,
                })).collect::<Vec<_>>(),
            }),
            ErrorDetail::QuotaFailure(d) => json!({
                "@type": tonic_types::QuotaFailure::TYPE_URL,
                "violations": d.violations.iter().map(|v| json!({
                    "subject": v.subject,
                    "description": v.description,
                })).collect::<Vec<_>>(),
            }),
            ErrorDetail::ErrorInfo(d) => json!({
                "@type": tonic_types::ErrorInfo::TYPE_URL,
                "reason": d.reason,
                "domain": d.domain,
                "metadata": d.metadata,
            }),
            ErrorDetail::RetryInfo(d) => json!({
                "@type": tonic_types::RetryInfo::TYPE_URL,
                // protobuf JSON's Duration: seconds with an `s`.
                "retry_delay": d.retry_delay.map(|t| format!("{:.3}s", t.as_secs_f64())),
            }),
            ErrorDetail::DebugInfo(d) => json!({
                "@type": tonic_types::DebugInfo::TYPE_URL,
                "stack_entries": d.stack_entries,
                "detail": d.detail,
            }),
            ErrorDetail::RequestInfo(d) => json!({
                "@type": tonic_types::RequestInfo::TYPE_URL,
                "request_id": d.request_id,
                "serving_data": d.serving_data,
            }),
            ErrorDetail::Help(d) => json!({
                "@type": tonic_types::Help::TYPE_URL,
                "links": d.links.iter().map(|l| json!({
                    "description": l.description,
                    "url": l.url,
                })).collect::<Vec<_>>(),
            }),
            ErrorDetail::LocalizedMessage(d) => json!({
                "@type": tonic_types::LocalizedMessage::TYPE_URL,
                "locale": d.locale,
                "message": d.message,
            }),
            other => json!({ "@type": "unknown", "debug": format!("{other:?}") }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::FieldViolation;

    #[test]
    fn codes_map_as_grpc_gateway_maps_them() {
        for (code, http) in [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::OutOfRange, 400),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
        ] {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn details_are_the_ones_grpc_sends() {
        let status = status_from(PortsError::Invalid(vec![
            FieldViolation::new("service", "must not be empty"),
            FieldViolation::new("port", "out of range"),
        ]));
        let details = details_json(&status);
        assert_eq!(
            details,
            [json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [
                    {"field": "service", "description": "must not be empty"},
                    {"field": "port", "description": "out of range"},
                ],
            })]
        );
        let quarantined = status_from(PortsError::Quarantined {
            port: 8000,
            remaining_ms: 1500,
            last_service: "web".into(),
        });
        let details = details_json(&quarantined);
        let of = |t: &str| {
            details
                .iter()
                .find(|d| d["@type"] == format!("type.googleapis.com/google.rpc.{t}"))
                .cloned()
                .unwrap_or_else(|| panic!("no {t} in {details:?}"))
        };
        assert_eq!(
            of("PreconditionFailure")["violations"][0]["type"],
            "QUARANTINE"
        );
        assert_eq!(of("RetryInfo")["retry_delay"], "1.500s");
    }
}
