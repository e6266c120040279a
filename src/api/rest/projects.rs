//! `/api/ports/projects`: the ports a project remembers, and forgetting them. Thin, like
//! their gRPC twins ListProjectPorts and ForgetProject.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::Peer;
use super::ports::bad_query;
use super::RestState;
use crate::ports::{ProjectPort, ProjectPortState, ProjectRecord};
use crate::wire::{self, timestamp as rfc3339};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    /// The project's directory: absolute and canonical, at most 1024 bytes
    #[param(example = "/home/alice/src/shop")]
    pub path: String,
}

/// Whether a remembered port is the project's now.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectPortStateJson {
    /// The project's own allocation holds it.
    Held,
    /// Nobody holds it: the project gets it back next time.
    Free,
    /// Another service holds it: the project gets another port next time.
    Taken,
}

/// One port a project remembers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectPort)]
pub struct ProjectPortJson {
    pub project: String,
    /// The port's name in the project ("web").
    pub name: String,
    pub port: u16,
    /// The service name of the project's allocations of this name ("web.shop").
    pub service: String,
    /// Null for a forgotten record.
    pub state: Option<ProjectPortStateJson>,
    /// `held`: the project's allocation.
    pub allocation: Option<wire::Allocation>,
    /// `taken`: the service holding the port.
    pub holder: Option<String>,
    /// The uid the project belongs to.
    pub owner_uid: u32,
    /// When an allocation last made or moved the record.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl ProjectPortJson {
    fn record(r: &ProjectRecord) -> Self {
        Self {
            project: r.key.project.clone(),
            name: r.key.name.clone(),
            port: r.port,
            service: r.service.clone(),
            state: None,
            allocation: None,
            holder: None,
            owner_uid: r.owner_uid,
            updated_at: rfc3339(r.updated_at_ms),
        }
    }

    fn new(p: &ProjectPort) -> Self {
        let (state, allocation, holder) = match &p.state {
            ProjectPortState::Held(a) => (
                ProjectPortStateJson::Held,
                Some(wire::Allocation::from(&**a)),
                None,
            ),
            ProjectPortState::Free => (ProjectPortStateJson::Free, None, None),
            ProjectPortState::Taken { service } => {
                (ProjectPortStateJson::Taken, None, Some(service.clone()))
            }
        };
        Self {
            state: Some(state),
            allocation,
            holder,
            ..Self::record(&p.record)
        }
    }
}

/// A project's remembered ports, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectPortsJson {
    pub project: String,
    pub ports: Vec<ProjectPortJson>,
}

/// What forgetting a project did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForgottenJson {
    pub project: String,
    /// The records forgotten, as they were (empty when the project had none).
    pub forgotten: Vec<ProjectPortJson>,
    /// The project's allocations that were released.
    pub released: Vec<wire::Allocation>,
}

/// The ports a project remembers, with what holds each now.
#[utoipa::path(get, path = "/api/ports/projects", tag = "ports", params(ProjectQuery),
    responses(
        (status = 200, description = "The project's ports, by name (none: an empty list)", body = ProjectPortsJson),
        (status = 400, description = "The path is missing, not absolute or not canonical", body = ErrorBody),
    ))]
pub async fn list(
    State(s): State<RestState>,
    query: Result<Query<ProjectQuery>, QueryRejection>,
) -> Result<Json<ProjectPortsJson>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let ports = s.allocator.project_ports(&q.path)?;
    Ok(Json(ProjectPortsJson {
        project: q.path,
        ports: ports.iter().map(ProjectPortJson::new).collect(),
    }))
}

/// Releases a project's allocations and forgets its ports. Only the project's owner (the uid
/// that first allocated in it) or root may.
#[utoipa::path(delete, path = "/api/ports/projects", tag = "ports", params(ProjectQuery),
    responses(
        (status = 200, description = "Forgotten (a project with no ports is forgotten already)", body = ForgottenJson),
        (status = 400, description = "The path is missing, not absolute or not canonical, or the caller is not identified", body = ErrorBody),
        (status = 403, description = "Another user's project, or a cross-site request", body = ErrorBody),
    ))]
pub async fn forget(
    State(s): State<RestState>,
    Peer(caller): Peer,
    query: Result<Query<ProjectQuery>, QueryRejection>,
) -> Result<Json<ForgottenJson>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let gone = s.allocator.forget_project(&q.path, &caller)?;
    Ok(Json(ForgottenJson {
        project: q.path,
        forgotten: gone.records.iter().map(ProjectPortJson::record).collect(),
        released: gone.released.iter().map(wire::Allocation::from).collect(),
    }))
}
