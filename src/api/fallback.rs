//! What answers a path no service or REST route owns. A gRPC client (HTTP/2, content-type
//! application/grpc) gets UNIMPLEMENTED, as grpcurl expects. Anyone else (curl) gets HTTP 404
//! with the REST error body, instead of gRPC's bare `200 OK` + `grpc-status: 12`, which reads as
//! success to an HTTP client.

use axum::body::Body;
use axum::http::{Request, Response, Version};
use axum::response::IntoResponse;

use super::observe::is_grpc;
use super::rest::ApiError;

pub async fn unknown_path(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if is_grpc(req.headers()) && req.version() >= Version::HTTP_2 {
        let (parts, ()) = tonic::Status::unimplemented(format!("unknown method {path}"))
            .into_http::<()>()
            .into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    ApiError::new(tonic::Status::not_found(format!(
        "no such path: {} {path}; the REST paths are listed at /api/openapi.json",
        req.method()
    )))
    .into_response()
}
