//! NetworkService: the diagnostics on demand. Each RPC runs its checks fresh on the diagnostics
//! pool (they read /proc, talk netlink and resolve names), bounded per caller.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::diagnostics::DiagnosticPool;
use super::error::status_from;
use crate::network::{self, NetworkGate};
use crate::ports::{self, PortsError};
use crate::proto::network_service_server::NetworkService;
use crate::proto::*;

#[derive(Clone)]
pub struct NetworkApi {
    gate: Arc<NetworkGate>,
    diagnostics: Arc<DiagnosticPool>,
}

impl NetworkApi {
    pub fn new(gate: Arc<NetworkGate>, diagnostics: Arc<DiagnosticPool>) -> Self {
        Self { gate, diagnostics }
    }

    /// Runs a diagnostic for the caller of `req` on the diagnostics pool.
    async fn blocking<R, T: Send + 'static>(
        &self,
        req: &Request<R>,
        f: impl FnOnce(&Arc<NetworkGate>) -> T + Send + 'static,
    ) -> Result<T, Status> {
        let caller = super::caller::caller_of(req.extensions());
        let gate = self.gate.clone();
        self.diagnostics.run(&caller, move || f(&gate)).await
    }
}

#[tonic::async_trait]
impl NetworkService for NetworkApi {
    async fn health(
        &self,
        req: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let port = req
            .get_ref()
            .port
            .map(|p| ports::port_number("port", p))
            .transpose()
            .map_err(|v| status_from(PortsError::Invalid(vec![v])))?;
        // Fresh, as this RPC always was; the new snapshot also serves the next allocations.
        let report = self
            .blocking(&req, move |gate| gate.report(port, true))
            .await?;
        Ok(Response::new(HealthResponse {
            report: Some(convert::report(&report)),
        }))
    }

    async fn stats(&self, req: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        let stats = self.blocking(&req, |_| network::io_stats()).await?;
        Ok(Response::new(convert::io_stats(&stats)))
    }

    async fn port_exhaustion(
        &self,
        req: Request<PortExhaustionRequest>,
    ) -> Result<Response<PortExhaustionResponse>, Status> {
        let check = self
            .blocking(&req, |gate| network::port_exhaustion(gate.config()))
            .await?;
        Ok(Response::new(PortExhaustionResponse {
            check: Some(convert::check(&check)),
        }))
    }

    async fn tls_readiness(
        &self,
        req: Request<TlsReadinessRequest>,
    ) -> Result<Response<TlsReadinessResponse>, Status> {
        let check = self
            .blocking(&req, |gate| network::tls_readiness(gate.config()))
            .await?;
        Ok(Response::new(TlsReadinessResponse {
            check: Some(convert::check(&check)),
        }))
    }
}
