//! PortsService: validates nothing itself (the domain does), maps requests to domain calls and
//! domain answers to proto.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::diagnostics::DiagnosticPool;
use super::error::status_from;
use crate::daemon_info::DaemonInfo;
use crate::ports::{self, Allocator, Caller};
use crate::proto::ports_service_server::PortsService;
use crate::proto::*;

#[derive(Clone)]
pub struct PortsApi {
    allocator: Arc<Allocator>,
    /// Status also describes the daemon (version, start, listeners, state file).
    daemon: Arc<DaemonInfo>,
    /// Where CheckPorts probes, bounded per caller.
    diagnostics: Arc<DiagnosticPool>,
}

impl PortsApi {
    pub fn new(
        allocator: Arc<Allocator>,
        daemon: Arc<DaemonInfo>,
        diagnostics: Arc<DiagnosticPool>,
    ) -> Self {
        Self {
            allocator,
            daemon,
            diagnostics,
        }
    }
}

fn caller_of<T>(req: &Request<T>) -> Caller {
    super::caller::caller_of(req.extensions())
}

fn non_empty(t: String) -> Option<String> {
    (!t.is_empty()).then_some(t)
}

#[tonic::async_trait]
impl PortsService for PortsApi {
    async fn allocate(
        &self,
        req: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let caller = caller_of(&req);
        let r = req.into_inner();
        let pool = convert::pool(r.pool());
        let domain = ports::AllocateRequest {
            service: r.service,
            purpose: r.purpose,
            started_by: r.started_by,
            pid: r.pid,
            port: r.port,
            ttl_seconds: r.ttl_seconds,
            labels: r.labels.into_iter().collect(),
            owner_is_caller: r.owner_is_caller,
            owner_identity: None,
            derived_service: false,
            reuse: r.reuse,
            prefer: r.prefer,
            pool,
            project: non_empty(r.project),
        };
        let granted = super::allocate_off_runtime(&self.allocator, domain, caller)
            .await
            .map_err(|e| Status::internal(format!("allocation task failed: {e}")))?
            .map_err(status_from)?;
        let a = &granted.allocation;
        Ok(Response::new(AllocateResponse {
            allocation: Some(convert::allocation(a)),
            lease_token: a.lease_token.clone(),
            network_health: convert::network_health(&a.network_health) as i32,
            warnings: granted.warnings,
            network_report: granted.report.as_ref().map(convert::report),
            reused: granted.reused,
        }))
    }

    async fn release(
        &self,
        req: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let caller = caller_of(&req);
        let r = req.into_inner();
        let released = self
            .allocator
            .release(r.port, non_empty(r.lease_token).as_deref(), &caller)
            .map_err(status_from)?;
        Ok(Response::new(ReleaseResponse {
            allocation: Some(convert::allocation(&released.allocation)),
            quarantined_until: Some(convert::timestamp(released.quarantine_until_ms)),
        }))
    }

    async fn renew(&self, req: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        let caller = caller_of(&req);
        let r = req.into_inner();
        let domain = ports::RenewRequest {
            port: r.port,
            lease_token: non_empty(r.lease_token),
            ttl_seconds: r.ttl_seconds,
            requests_delta: r.requests_delta,
            errors_delta: r.errors_delta,
            convert_to_lease: r.convert_to_lease,
        };
        let a = self.allocator.renew(domain, &caller).map_err(status_from)?;
        Ok(Response::new(RenewResponse {
            allocation: Some(convert::allocation(&a)),
        }))
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let a = self
            .allocator
            .get(req.into_inner().port)
            .map_err(status_from)?;
        Ok(Response::new(GetResponse {
            allocation: Some(convert::allocation(&a)),
        }))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let r = req.into_inner();
        let service = ports::service_filter(Some(r.service)).map_err(status_from)?;
        let allocations = self
            .allocator
            .list(service.as_deref())
            .iter()
            .map(convert::allocation)
            .collect();
        Ok(Response::new(ListResponse { allocations }))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        // Cheap (no probes while the socket table's listeners are known): runs inline.
        Ok(Response::new(status_response(
            &self.allocator,
            &self.daemon,
        )))
    }

    async fn check_ports(
        &self,
        req: Request<CheckPortsRequest>,
    ) -> Result<Response<CheckPortsResponse>, Status> {
        let caller = caller_of(&req);
        let r = req.into_inner();
        let list = ports::port_list(&r.ports).map_err(status_from)?;
        let allocator = self.allocator.clone();
        let verdicts = self
            .diagnostics
            .run(&caller, move || allocator.check_ports(&list, &caller))
            .await?;
        Ok(Response::new(CheckPortsResponse {
            results: verdicts.iter().map(convert::port_check).collect(),
        }))
    }

    async fn list_project_ports(
        &self,
        req: Request<ListProjectPortsRequest>,
    ) -> Result<Response<ListProjectPortsResponse>, Status> {
        let r = req.into_inner();
        let ports = self
            .allocator
            .project_ports(&r.project)
            .map_err(status_from)?;
        Ok(Response::new(ListProjectPortsResponse {
            ports: ports.iter().map(convert::project_port).collect(),
        }))
    }

    async fn forget_project(
        &self,
        req: Request<ForgetProjectRequest>,
    ) -> Result<Response<ForgetProjectResponse>, Status> {
        let caller = caller_of(&req);
        let r = req.into_inner();
        let gone = self
            .allocator
            .forget_project(&r.project, &caller)
            .map_err(status_from)?;
        Ok(Response::new(ForgetProjectResponse {
            forgotten: gone.records.iter().map(convert::project_record).collect(),
            released: gone.released.iter().map(convert::allocation).collect(),
        }))
    }
}

/// The ports' status as Status (and Overview) answer it.
pub(super) fn status_response(allocator: &Allocator, daemon: &DaemonInfo) -> StatusResponse {
    let s = allocator.status();
    let test_pool = allocator.test_pool_status();
    StatusResponse {
        ranges: convert::port_ranges(&s.ranges),
        total: s.total as u32,
        allocated: s.allocated as u32,
        available: s.available as u32,
        quarantined: s.quarantined as u32,
        unavailable: s.unavailable as u32,
        quarantine_seconds: s.quarantine.as_secs(),
        warnings: s.warnings,
        daemon: Some(convert::daemon_info(daemon)),
        test_pool: test_pool.map(|t| TestPoolStatus {
            ranges: convert::port_ranges(&t.ranges),
            total: t.total as u32,
            allocated: t.allocated as u32,
            available: t.available as u32,
            resting: t.quarantined as u32,
            unavailable: t.unavailable as u32,
        }),
    }
}
