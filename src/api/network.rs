//! NetworkService: the diagnostics on demand. Each RPC runs its checks fresh on the blocking pool
//! (they read /proc, talk netlink and resolve names).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::error::status_from;
use crate::network::{self, NetworkGate};
use crate::ports::PortsError;
use crate::proto::network_service_server::NetworkService;
use crate::proto::*;

#[derive(Clone)]
pub struct NetworkApi {
    gate: Arc<NetworkGate>,
}

impl NetworkApi {
    pub fn new(gate: Arc<NetworkGate>) -> Self {
        Self { gate }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&network::NetworkConfig) -> T + Send + 'static,
    ) -> Result<T, Status> {
        let gate = self.gate.clone();
        tokio::task::spawn_blocking(move || f(gate.config()))
            .await
            .map_err(|e| Status::internal(format!("diagnostics task failed: {e}")))
    }
}

#[tonic::async_trait]
impl NetworkService for NetworkApi {
    async fn health(
        &self,
        req: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let port = match req.into_inner().port {
            None => None,
            Some(p) => Some(u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                status_from(PortsError::invalid(
                    "port",
                    format!("{p} is not a port number (1-65535)"),
                ))
            })?),
        };
        // Fresh, as this RPC always was; the new snapshot also serves the next allocations.
        let gate = self.gate.clone();
        let report = tokio::task::spawn_blocking(move || gate.report(port, true))
            .await
            .map_err(|e| Status::internal(format!("diagnostics task failed: {e}")))?;
        Ok(Response::new(HealthResponse {
            report: Some(convert::report(&report)),
        }))
    }

    async fn stats(&self, _: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        let stats = self.blocking(|_| network::io_stats()).await?;
        Ok(Response::new(convert::io_stats(&stats)))
    }

    async fn port_exhaustion(
        &self,
        _: Request<PortExhaustionRequest>,
    ) -> Result<Response<PortExhaustionResponse>, Status> {
        let check = self.blocking(network::port_exhaustion).await?;
        Ok(Response::new(PortExhaustionResponse {
            check: Some(convert::check(&check)),
        }))
    }

    async fn tls_readiness(
        &self,
        _: Request<TlsReadinessRequest>,
    ) -> Result<Response<TlsReadinessResponse>, Status> {
        let check = self.blocking(network::tls_readiness).await?;
        Ok(Response::new(TlsReadinessResponse {
            check: Some(convert::check(&check)),
        }))
    }
}
