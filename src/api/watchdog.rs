//! WatchdogService: not built yet. Every RPC answers UNIMPLEMENTED, honestly, instead of data.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::proto::watchdog_service_server::WatchdogService;
use crate::proto::*;

#[derive(Debug, Default, Clone)]
pub struct WatchdogApi;

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "portwarden.v1.WatchdogService/{rpc} is not built yet (the watchdog lands with its own issue)"
    ))
}

#[tonic::async_trait]
impl WatchdogService for WatchdogApi {
    async fn status(
        &self,
        _: Request<WatchdogStatusRequest>,
    ) -> Result<Response<WatchdogStatusResponse>, Status> {
        Err(not_yet("Status"))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(not_yet("Watch"))
    }
}
