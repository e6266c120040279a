//! What a request for a project port gets, before any port is picked (the one hook
//! [`Allocator::allocate`] calls), and listing and forgetting a project's ports. The records
//! themselves and the pick order are in `projects.rs`.
//!
//! For a name the project has a record of:
//! - the project's allocation of that name, when it is alive and owned as the request asks (or
//!   the request names no owning process: a shell asking "which port is `web`?"), is handed back;
//! - one without an owning process (made from a shell) is handed over to a request that names
//!   one (`portwarden up` taking the port `portwarden env` printed): released, and the same port
//!   allocated anew;
//! - one owned by another live process (the project running twice) is left alone: the request
//!   gets a port of its own, and the record follows it;
//! - otherwise the recorded port is claimed as `prefer` claims a port (a dead holder is reclaimed,
//!   the project's own rest after release does not apply), else the usual pick.

use super::allocator::{Allocator, Granted, State};
use super::clock::Now;
use super::error::PortsError;
use super::fields::valid_project;
use super::lease::{Caller, Vitality};
use super::projects::{
    delete_project, is_recorded, Forgotten, ProjectPort, ProjectPortState, ProjectRecord,
};
use super::range::RangeSet;
use super::reuse;
use super::store::StoreError;
use super::validate::ValidAllocate;
use crate::events::{EventDetail, NewEvent};

/// How a request goes on after the project hook.
pub(super) enum ProjectStart {
    /// Allocate as usual, trying this port first (the project's recorded port).
    Claim(Option<u16>),
    /// The project's live allocation of the name, handed back.
    HandBack(Box<Granted>),
}

impl Allocator {
    /// The project hook: checks the project is the caller's, names the allocation after the
    /// record, and decides what the request gets (see the module comment). Not a project
    /// request: `Claim(None)`.
    pub(super) fn project_start_locked(
        &self,
        st: &mut State,
        v: &mut ValidAllocate,
        caller: &Caller,
        range: &RangeSet,
        now: Now,
    ) -> Result<ProjectStart, PortsError> {
        let Some(key) = v.project.clone() else {
            return Ok(ProjectStart::Claim(None));
        };
        st.projects.owner_for(&key.project, caller)?;
        v.service = st.projects.service_for(&key);
        let Some(record) = st.projects.get(&key).cloned() else {
            return Ok(ProjectStart::Claim(None));
        };
        let held = st
            .leases
            .get(&record.port)
            .filter(|a| is_recorded(a, &record))
            .cloned();
        if let Some(a) = held {
            let uid = caller.uid.unwrap_or(u32::MAX);
            match self.vitality(&a, now) {
                // Reclaimed inline by the claim below.
                Vitality::Dead(_) => {}
                _ if reuse::matches(&a, v, uid) || v.owner.is_none() => {
                    let granted = self.hand_back_locked(st, a, v.ttl_seconds, caller)?;
                    return Ok(ProjectStart::HandBack(Box::new(granted)));
                }
                _ if a.owner.is_none() => {
                    let message = format!(
                        "Released port {} ({}): handed over to a new owner in its project",
                        a.port, a.service
                    );
                    let ev = NewEvent::about(&a, message, EventDetail::Released);
                    self.retire_locked(st, &a, now, ev)?;
                    self.counters.released();
                }
                _ => return Ok(ProjectStart::Claim(None)),
            }
        }
        Ok(ProjectStart::Claim(
            Some(record.port).filter(|p| range.contains(*p)),
        ))
    }

    /// The ports `project` remembers, by name, with what holds each now.
    pub fn project_ports(&self, project: &str) -> Result<Vec<ProjectPort>, PortsError> {
        valid_project("project", project).map_err(|v| PortsError::Invalid(vec![v]))?;
        let st = self.lock();
        Ok(st
            .projects
            .of(project)
            .map(|r| ProjectPort {
                record: r.clone(),
                state: state_of(&st, r),
            })
            .collect())
    }

    /// Releases the project's allocations and forgets its records. Only the project's owner or
    /// root may; a project with no records is forgotten already.
    pub fn forget_project(&self, project: &str, caller: &Caller) -> Result<Forgotten, PortsError> {
        valid_project("project", project).map_err(|v| PortsError::Invalid(vec![v]))?;
        let mut st = self.lock();
        let records: Vec<ProjectRecord> = st.projects.of(project).cloned().collect();
        if records.is_empty() {
            return Ok(Forgotten::default());
        }
        st.projects.owner_for(project, caller)?;
        let now = self.host.now();
        let mut released = Vec::new();
        for r in &records {
            let Some(a) = st
                .leases
                .get(&r.port)
                .filter(|a| is_recorded(a, r))
                .cloned()
            else {
                continue;
            };
            let message = format!(
                "Released port {} ({}): its project was forgotten",
                a.port, a.service
            );
            let ev = NewEvent::about(&a, message, EventDetail::Released);
            self.retire_locked(&mut st, &a, now, ev)?;
            self.counters.released();
            released.push(a);
        }
        let deleted = delete_project(&mut st.store.conn, project).map_err(StoreError::from);
        if self.storage.note(&deleted) {
            self.storage_changed();
        }
        deleted?;
        let records = st.projects.remove_project(project);
        drop(st);
        tracing::info!(
            project = %crate::text::printable(project),
            records = records.len(),
            released = released.len(),
            "[PORT-MANAGER] Forgot the ports of project {}",
            crate::text::printable(project)
        );
        Ok(Forgotten { records, released })
    }
}

fn state_of(st: &State, r: &ProjectRecord) -> ProjectPortState {
    match st.leases.get(&r.port) {
        Some(a) if is_recorded(a, r) => ProjectPortState::Held(Box::new(a.clone())),
        Some(a) => ProjectPortState::Taken {
            service: a.service.clone(),
        },
        None => ProjectPortState::Free,
    }
}
