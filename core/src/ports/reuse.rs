//! Reuse on request: `allocate --reuse` returns the caller's own allocation of the service,
//! lease token included, instead of a new port, so a script that runs again does not take (and
//! leak) one more port each time.
//!
//! "Own" is decided on what the transport vouches for ([`Caller`]), never on what the request
//! claims: the allocation must have been made by the same uid, and when a process owns it, the
//! request must name that same process (pid and start time). It must also be owned the same way
//! (a lease for a request with a TTL, no lease for one without) and sit on the requested port,
//! if one is given. A caller whose uid the connection does not tell is refused, not handed a new
//! port silently: that is how ports leak. Replicas (requests without `reuse`) are unaffected.

use super::allocator::{Allocator, Granted, State};
use super::error::PortsError;
use super::lease::{Allocation, Caller, Vitality};
use super::validate::ValidAllocate;
use crate::events::{EventDetail, NewEvent};

/// Whether `a` is `caller`'s allocation as `v` asks for it.
pub(super) fn matches(a: &Allocation, v: &ValidAllocate, uid: u32) -> bool {
    let same_process = match (&a.owner, &v.owner) {
        (None, None) => true,
        (Some(held), Some(asked)) => held.pid == asked.pid && held.start_time == asked.start_time,
        _ => false,
    };
    a.service == v.service
        && a.owner_uid == Some(uid)
        && same_process
        && a.ttl_seconds.is_some() == v.ttl_seconds.is_some()
        && v.port.is_none_or(|p| p == a.port)
}

impl Allocator {
    /// The caller's existing allocation matching `v`, when `v` asks for reuse (a lease is
    /// renewed with the requested TTL: asking again is a sign of life). None: allocate anew.
    pub(super) fn reuse_locked(
        &self,
        st: &mut State,
        v: &ValidAllocate,
        caller: &Caller,
    ) -> Result<Option<Granted>, PortsError> {
        if !v.reuse {
            return Ok(None);
        }
        let uid = caller
            .uid
            .ok_or(PortsError::CallerUnknown { what: "reuse" })?;
        let now = self.host.now();
        let Some(a) = st
            .leases
            .values()
            .filter(|a| matches(a, v, uid))
            // A dead owner's allocation is about to be reclaimed, not handed back.
            .find(|a| !matches!(self.vitality(a, now), Vitality::Dead(_)))
            .cloned()
        else {
            return Ok(None);
        };
        self.hand_back_locked(st, a, v.ttl_seconds, caller)
            .map(Some)
    }

    /// Hands `a` back to its owner, who asked again: a lease is renewed with `ttl` (asking
    /// again is a sign of life).
    pub(super) fn hand_back_locked(
        &self,
        st: &mut State,
        mut a: Allocation,
        ttl: Option<u64>,
        caller: &Caller,
    ) -> Result<Granted, PortsError> {
        let now = self.host.now();
        if let Some(ttl) = ttl.filter(|_| a.ttl_seconds.is_some()) {
            a.ttl_seconds = Some(ttl);
            a.expires = Some(now.plus((ttl as i64) * 1000));
            a.renewed_at_ms = Some(now.wall_ms);
            let message = format!(
                "Port {} ({}) reused by its owner; lease renewed for {ttl} s",
                a.port, a.service
            );
            let detail = EventDetail::Renewed {
                requests_delta: 0,
                errors_delta: 0,
            };
            self.commit_event(st, now, NewEvent::about(&a, message, detail), |s, e| {
                s.update(&a, e)
            })?;
            st.leases.insert(a.port, a.clone());
        }
        tracing::info!(
            port = a.port,
            service = %a.service,
            caller_uid = caller.uid,
            caller_pid = caller.pid,
            "[PORT-MANAGER] Reused port {} for {} (its owner asked again)",
            a.port,
            a.service
        );
        Ok(Granted {
            allocation: a,
            warnings: Vec::new(),
            report: None,
            reused: true,
        })
    }
}
