//! The services every listener serves: gRPC (ports, network, watchdog, health, reflection v1 +
//! v1alpha) and, beside them on the same routes, REST and /metrics.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

use super::domain::Core;
use super::ServerError;
use crate::api::{NetworkApi, PortsApi, WatchdogApi};
use crate::config::MAX_MESSAGE_BYTES;
use crate::daemon_info::DaemonInfo;
use crate::ports::Allocator;
use crate::proto::network_service_server::NetworkServiceServer;
use crate::proto::ports_service_server::PortsServiceServer;
use crate::proto::watchdog_service_server::WatchdogServiceServer;

/// The routes, with health already SERVING.
pub(super) async fn routes(
    core: &Core,
    daemon_info: &Arc<DaemonInfo>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<(Routes, HealthReporter), ServerError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    // Every service decodes at most MAX_MESSAGE_BYTES per request, health and reflection too.
    let health_service = health_service.max_decoding_message_size(MAX_MESSAGE_BYTES);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // The google.rpc error details, so grpcurl can decode an error's details.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    // Diagnostics get threads of their own, bounded per caller: never the blocking pool an
    // allocation may need.
    let diagnostics =
        crate::api::diagnostics::DiagnosticPool::start().map_err(|source| ServerError::Listen {
            addr: "diagnostics threads".into(),
            source,
        })?;
    let Core {
        allocator,
        gate,
        watchdog,
    } = core;
    let ports = PortsServiceServer::new(PortsApi::new(
        allocator.clone(),
        daemon_info.clone(),
        diagnostics.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let network = NetworkServiceServer::new(NetworkApi::new(gate.clone(), diagnostics.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let watchdog_service = WatchdogServiceServer::new(WatchdogApi::new(
        allocator.clone(),
        watchdog.clone(),
        diagnostics.clone(),
        gate.clone(),
        daemon_info.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut routes = Routes::new(health_service)
        .add_service(ports)
        .add_service(network)
        .add_service(watchdog_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    // REST (/api/ports/..., /metrics) beside the gRPC services, on the same listeners.
    let rest = crate::api::rest::RestState {
        metrics,
        allocator: allocator.clone(),
        gate: gate.clone(),
        watchdog: watchdog.clone(),
        daemon: daemon_info.clone(),
        diagnostics,
    };
    let router = crate::api::http_router(std::mem::take(routes.axum_router_mut()), rest);
    *routes.axum_router_mut() = router;
    health.set_serving::<PortsServiceServer<PortsApi>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    Ok((routes, health))
}

/// The ports service is NOT_SERVING while the state cannot be written (a full disk), and
/// SERVING again once it can: a load balancer or a probe then knows allocations would fail.
pub(super) async fn storage_health(
    allocator: std::sync::Weak<Allocator>,
    health: HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    let mut serving = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(a) = allocator.upgrade() else { return };
        let ok = a.storage_problem().is_none();
        drop(a);
        if ok == serving {
            continue;
        }
        serving = ok;
        if ok {
            tracing::info!("the state can be written again: PortsService SERVING");
            health.set_serving::<PortsServiceServer<PortsApi>>().await;
        } else {
            tracing::warn!("the state cannot be written: PortsService NOT_SERVING until it can");
            health
                .set_not_serving::<PortsServiceServer<PortsApi>>()
                .await;
        }
    }
}

/// Marks every service NOT_SERVING (shutdown).
pub(super) async fn not_serving(health: &HealthReporter) {
    health
        .set_not_serving::<PortsServiceServer<PortsApi>>()
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
}
