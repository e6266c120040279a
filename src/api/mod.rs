//! The wire layer: gRPC services, the REST gateway, proto <-> domain conversion and error
//! mapping. The only place where tonic, axum and protobuf types meet the domain.

mod activity;
pub mod caller;
mod convert;
pub mod diagnostics;
mod error;
mod fallback;
mod grpc_status;
mod guard;
mod lagging;
mod network;
mod observe;
mod peer;
mod ports;
#[cfg(unix)]
mod portserver;
pub mod rest;
mod watchdog;

use std::sync::Arc;

use axum::middleware::{from_fn, from_fn_with_state};

pub use error::status_from;
pub use fallback::unknown_path;
pub use network::NetworkApi;
pub use ports::PortsApi;
#[cfg(unix)]
pub use portserver::{Portserver, MAX_CONNECTIONS, REQUEST_TIMEOUT};

/// portpicker's protocol is served on a Unix socket. Off Unix the config refuses
/// `portserver_socket`; reached anyway, starting it says the same.
#[cfg(not(unix))]
pub struct Portserver(std::convert::Infallible);

#[cfg(not(unix))]
impl Portserver {
    pub fn start(
        _addr: &crate::config::PortserverSocket,
        _allocator: Arc<crate::ports::Allocator>,
        _metrics: Arc<crate::metrics::Metrics>,
        _stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the portserver protocol needs a Unix socket, which this platform does not have",
        ))
    }

    pub async fn stopped(self) {
        match self.0 {}
    }
}
pub use watchdog::WatchdogApi;

/// One router for both protocols: the gRPC services (`grpc`, tonic's routes) accept only gRPC,
/// the REST routes are merged beside them, unknown paths get [`unknown_path`], and every
/// request is counted for `/metrics` on the way out.
/// Allocates on this task when no network snapshot must be retaken first, else on the
/// blocking pool (a snapshot takes the census and DNS: up to the DNS timeout), never on an
/// async worker other clients share. gRPC, REST and the portserver all allocate through it.
async fn allocate_off_runtime(
    allocator: &Arc<crate::ports::Allocator>,
    req: crate::ports::AllocateRequest,
    caller: crate::ports::Caller,
) -> Result<Result<crate::ports::Granted, crate::ports::PortsError>, tokio::task::JoinError> {
    if allocator.is_fast() {
        return Ok(allocator.allocate(req, &caller));
    }
    let allocator = allocator.clone();
    tokio::task::spawn_blocking(move || allocator.allocate(req, &caller)).await
}

pub fn http_router(grpc: axum::Router, rest: rest::RestState) -> axum::Router {
    let observer = Arc::new(observe::Observer::new(rest.metrics.clone()));
    grpc.route_layer(from_fn(grpc_status::client_errors))
        .route_layer(from_fn(guard::grpc_only))
        .merge(rest::router(rest))
        .fallback(unknown_path)
        .layer(from_fn_with_state(observer, observe::count))
        .layer(from_fn(activity::track))
}
