//! Reading a REST request: the caller, a port in the path, the lease token header and a JSON
//! body. Every refusal is a 4xx with the JSON error body naming what was wrong; nothing here
//! can panic or answer 500.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::api::caller::caller_of;
use crate::ports::Caller;

/// Header carrying the lease token on DELETE and renew.
pub const LEASE_TOKEN_HEADER: &str = "x-lease-token";

/// The caller, from the connection (SO_PEERCRED over the Unix socket).
pub struct Peer(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Peer(caller_of(&parts.extensions)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for crate::api::lagging::LagProbe {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self::of(&parts.extensions))
    }
}

/// The `X-Lease-Token` header, when given (empty counts as absent).
pub struct LeaseToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for LeaseToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get(LEASE_TOKEN_HEADER) {
            None => Ok(LeaseToken(None)),
            Some(v) => {
                let token = v.to_str().map_err(|_| {
                    ApiError::invalid("X-Lease-Token", "must be the visible ASCII token")
                })?;
                Ok(LeaseToken((!token.is_empty()).then(|| token.to_string())))
            }
        }
    }
}

/// The `{port}` path segment, as a number (the domain checks the range).
pub fn port_param(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>().map_err(|_| {
        ApiError::invalid(
            "port",
            format!("'{raw}' is not a port number (1-65535) in the path"),
        )
    })
}

/// Whether the request declares a JSON body (`application/json`, parameters allowed).
fn is_json(parts_ct: Option<&header::HeaderValue>) -> bool {
    parts_ct
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON body, checked: `Content-Type: application/json` (415 otherwise), at most the body
/// limit (413), well-formed, of the right shape and with no unknown field (400, naming it).
pub struct JsonBody<T>(pub T);

/// Reads a JSON body; `None` when `optional` and the body is empty.
async fn read_json<T: DeserializeOwned>(
    req: Request,
    optional: bool,
) -> Result<Option<T>, ApiError> {
    let declared_json = is_json(req.headers().get(header::CONTENT_TYPE));
    let bytes = Bytes::from_request(req, &()).await.map_err(|rejection| {
        let status = rejection.status();
        let err = ApiError::invalid("body", rejection.body_text());
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(tonic::Status::resource_exhausted(format!(
                "the request body is larger than {} bytes",
                crate::config::MAX_MESSAGE_BYTES
            )))
            .with_http(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            err.with_http(if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            })
        }
    })?;
    if optional && bytes.is_empty() {
        return Ok(None);
    }
    if !declared_json {
        return Err(ApiError::invalid(
            "Content-Type",
            "the body must be JSON, sent with Content-Type: application/json",
        )
        .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    // serde would read a list as the fields in order: a request is always an object.
    if bytes.trim_ascii_start().first().is_some_and(|b| *b != b'{') {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let (field, rule) = super::body_error::explain(&e.path().to_string(), e.inner());
        ApiError::invalid(&field, rule)
    })?;
    Ok(Some(value))
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        read_json(req, false)
            .await?
            .map(JsonBody)
            .ok_or_else(|| ApiError::invalid("body", "a JSON body is required"))
    }
}

/// A JSON body that may be left out (no body, no content type).
pub struct MaybeJsonBody<T>(pub T);

impl<T, S> FromRequest<S> for MaybeJsonBody<T>
where
    T: DeserializeOwned + Default + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        Ok(MaybeJsonBody(
            read_json(req, true).await?.unwrap_or_default(),
        ))
    }
}
