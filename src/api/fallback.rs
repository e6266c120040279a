//! What answers a path no service owns. A gRPC client (content-type application/grpc) gets
//! UNIMPLEMENTED, as grpcurl expects. Anyone else (curl) gets HTTP 501 with the JSON error body
//! of the REST contract, saying the gateway is not built yet, instead of gRPC's bare
//! `200 OK` + `grpc-status: 12`, which reads as success to an HTTP client.

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};

pub async fn unknown_path(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented(format!("unknown method {path}"))
            .into_http::<()>()
            .into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    let body = serde_json::json!({
        "code": tonic::Code::Unimplemented as i32,
        "message": format!(
            "{path}: the REST gateway is not built yet; use gRPC (grpcurl, the portwarden CLI, the clients) on this port"
        ),
        "details": [],
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::NOT_IMPLEMENTED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
