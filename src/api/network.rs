//! NetworkService: not built yet. Every RPC answers UNIMPLEMENTED, honestly, instead of data.

use tonic::{Request, Response, Status};

use crate::proto::network_service_server::NetworkService;
use crate::proto::*;

#[derive(Debug, Default, Clone)]
pub struct NetworkApi;

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "portwarden.v1.NetworkService/{rpc} is not built yet (network diagnostics land with issue #3)"
    ))
}

#[tonic::async_trait]
impl NetworkService for NetworkApi {
    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Err(not_yet("Health"))
    }
    async fn stats(&self, _: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        Err(not_yet("Stats"))
    }
    async fn port_exhaustion(
        &self,
        _: Request<PortExhaustionRequest>,
    ) -> Result<Response<PortExhaustionResponse>, Status> {
        Err(not_yet("PortExhaustion"))
    }
    async fn tls_readiness(
        &self,
        _: Request<TlsReadinessRequest>,
    ) -> Result<Response<TlsReadinessResponse>, Status> {
        Err(not_yet("TlsReadiness"))
    }
}
