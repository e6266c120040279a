//! The allocator: picks ports, records owners, releases, renews and reclaims. One mutex guards
//! the in-memory index and the SQLite connection together, so a port can never be handed to two
//! live owners: the decision and its durable record happen under the same lock, and the reply
//! goes out only after the commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::PortsError;
use super::lease::{new_token, Allocation, Caller, Health};
use super::range::RangeSet;
use super::store::{PortHistory, Store};
use super::validate::{
    managed_port, valid_ttl, AllocateRequest, PortVerdict, PortVerdictState, RenewRequest,
    ValidAllocate,
};
use crate::network::firewall;
use crate::network::gate::findings;
use crate::network::{NetworkGate, PortFinding, Report, SystemSnapshot};

#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    pub ranges: RangeSet,
    /// How long a released port rests before another service may have it (TIME_WAIT length).
    pub quarantine: Duration,
    pub state_path: PathBuf,
}

/// A successful allocation.
#[derive(Debug, Clone)]
pub struct Granted {
    pub allocation: Allocation,
    /// Findings worth telling the caller that did not block the allocation.
    pub warnings: Vec<String>,
    /// The pre-allocation network report (None when the allocator runs without a gate).
    pub report: Option<Report>,
}

#[derive(Debug, Clone)]
pub struct Released {
    pub allocation: Allocation,
    pub quarantine_until_ms: i64,
}

/// An allocation taken back because its owner is dead.
#[derive(Debug, Clone)]
pub struct Reclaimed {
    pub allocation: Allocation,
    pub reason: String,
}

/// What the start-up repair pass found.
#[derive(Debug, Default)]
pub struct RepairReport {
    pub kept: usize,
    pub reclaimed: Vec<Reclaimed>,
    /// Kept allocations whose port is no longer in a managed range.
    pub outside_range: Vec<u16>,
    /// Kept allocations whose port has a listener now.
    pub listening: usize,
}

#[derive(Debug, Clone)]
pub struct RangeStatus {
    pub ranges: RangeSet,
    pub total: usize,
    pub allocated: usize,
    pub available: usize,
    pub quarantined: usize,
    pub unavailable: usize,
    pub quarantine: Duration,
}

struct State {
    store: Store,
    leases: BTreeMap<u16, Allocation>,
    history: HashMap<u16, PortHistory>,
    sticky: HashMap<String, u16>,
    /// Managed ports without a lease, least recently used first: (last released at, port).
    idle: BTreeSet<(i64, u16)>,
}

pub struct Allocator {
    cfg: AllocatorConfig,
    state: Mutex<State>,
    /// Network checks run before every allocation; without one only the probe bind runs.
    gate: Option<Arc<NetworkGate>>,
}

/// allocated -> active once the owner is seen listening; active -> unhealthy when it stops.
fn health_seen(listening: bool, current: Health) -> Health {
    match (listening, current) {
        (true, Health::Dead) => Health::Dead,
        (true, _) => Health::Active,
        (false, Health::Active) => Health::Unhealthy,
        (false, h) => h,
    }
}

/// "pid 12 (nginx)" for the processes listening on `port`, when the socket table names them.
fn holder_of(port: u16) -> Option<String> {
    let holders = crate::network::listener_processes(port).ok()?;
    (!holders.is_empty()).then(|| {
        holders
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Allocator {
    /// Opens the state, then runs the repair pass: leases whose owner is dead are reclaimed,
    /// the rest are kept (never dropped) with their health refreshed from the socket table.
    pub fn open(cfg: AllocatorConfig) -> Result<(Self, RepairReport), PortsError> {
        let store = Store::open(&cfg.state_path)?;
        let snap = store.load()?;
        let sticky = snap.sticky();
        let history: HashMap<u16, PortHistory> =
            snap.history.into_iter().map(|h| (h.port, h)).collect();
        let leases: BTreeMap<u16, Allocation> =
            snap.allocations.into_iter().map(|a| (a.port, a)).collect();
        let idle = cfg
            .ranges
            .ports()
            .filter(|p| !leases.contains_key(p))
            .map(|p| (history.get(&p).map_or(0, |h| h.released_at_ms), p))
            .collect();
        let state = State {
            store,
            leases,
            history,
            sticky,
            idle,
        };
        let allocator = Self {
            cfg,
            state: Mutex::new(state),
            gate: None,
        };
        let report = allocator.repair()?;
        Ok((allocator, report))
    }

    /// Runs the network checks before every allocation: system-wide critical findings block
    /// all allocations, port-specific ones make the allocator try the next port.
    pub fn with_gate(mut self, gate: Arc<NetworkGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Whether an allocation can run without first taking a network snapshot (which may block
    /// for up to the DNS timeout): callers on an async runtime move the slow case to a
    /// blocking thread.
    pub fn is_fast(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| g.is_fresh())
    }

    /// The free check for one candidate: the gate's per-port checks when there is a gate (with
    /// the report), else the probe bind alone.
    fn free_check(
        &self,
        port: u16,
        snap: Option<&SystemSnapshot>,
    ) -> (PortFinding, Option<Report>) {
        let (Some(gate), Some(snap)) = (&self.gate, snap) else {
            return (firewall::probe(port).finding(), None);
        };
        let (report, finding) = gate.check_port(snap, port);
        (finding, Some(report))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written record (SQLite rolls back
        // uncommitted work), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn repair(&self) -> Result<RepairReport, PortsError> {
        let mut st = self.lock();
        let now = now_ms();
        let mut report = RepairReport::default();
        // The socket table's listeners, in one LISTEN-only sock_diag dump; without netlink, a
        // probe bind per port tells the same (EADDRINUSE means something listens).
        let listeners = crate::network::listening_ports()
            .map_err(|e| tracing::warn!(error = %e, "repair: no socket table; probing each port"))
            .ok();
        let ports: Vec<u16> = st.leases.keys().copied().collect();
        for port in ports {
            let Some(a) = st.leases.get(&port).cloned() else {
                continue;
            };
            if let Some(reason) = a.death_reason(now) {
                tracing::warn!(port, service = %a.service, %reason, "repair: reclaiming allocation of a dead owner");
                let r = self.reclaim_locked(&mut st, port, reason, now)?;
                report.reclaimed.push(r);
                continue;
            }
            report.kept += 1;
            if !self.cfg.ranges.contains(port) {
                tracing::warn!(port, service = %a.service, "repair: kept allocation outside the managed ranges; release it to drop it");
                report.outside_range.push(port);
            }
            let listening = match &listeners {
                Some(set) => set.contains(&port),
                None => matches!(firewall::probe(port).finding(), PortFinding::InUse(_)),
            };
            let health = health_seen(listening, a.health);
            report.listening += usize::from(listening);
            if health != a.health {
                let mut updated = a.clone();
                updated.health = health;
                st.store.update(&updated)?;
                st.leases.insert(port, updated);
            }
        }
        tracing::info!(
            kept = report.kept,
            reclaimed = report.reclaimed.len(),
            listening = report.listening,
            "repair pass done"
        );
        Ok(report)
    }

    pub fn allocate(&self, req: AllocateRequest, caller: &Caller) -> Result<Granted, PortsError> {
        let v = req.validate(&self.cfg.ranges, caller.pid)?;
        // Taken (or reused) outside the lock: a refresh must not stall other allocations.
        let snap = self.gate.as_ref().map(|g| g.snapshot());
        if let Some(system) = snap.as_deref().and_then(NetworkGate::system_critical) {
            tracing::error!(
                critical = ?system.critical_issues,
                "[NETWORK-HARDENING] Status: critical ({} critical, {} warnings): allocation blocked",
                system.critical_issues.len(),
                system.warnings.len()
            );
            return Err(PortsError::NetworkCritical {
                report: Box::new(system),
            });
        }
        let snap = snap.as_deref();
        let mut st = self.lock();
        let now = now_ms();
        // A made-up name identifies no service: it gets neither a sticky port nor the
        // quarantine exemption of a service taking its own port back.
        let service = (!v.derived_service).then_some(v.service.as_str());
        let (port, report) = match v.port {
            Some(p) => self.claim_requested(&mut st, p, service, now, snap)?,
            None => match self.pick_free(&st, service, now, snap) {
                Ok(found) => found,
                Err(_) if !self.sweep_locked(&mut st, now)?.is_empty() => {
                    self.pick_free(&st, service, now, snap)?
                }
                Err(e) => return Err(e),
            },
        };
        let network_health = report
            .as_ref()
            .map(|r| r.status.as_str().to_string())
            .unwrap_or_default();
        let allocation = self.record(&mut st, v, port, caller, now, network_health)?;
        drop(st);
        let warnings = report.as_ref().map(findings).unwrap_or_default();
        if let Some(r) = &report {
            let (c, w) = (r.critical_issues.len(), r.warnings.len());
            let status = r.status.as_str();
            if r.warnings.is_empty() {
                // A clean bill of health on every allocation is noise at info level.
                tracing::debug!(
                    port,
                    "[NETWORK-HARDENING] Status: {status} ({c} critical, {w} warnings)"
                );
            } else {
                tracing::warn!(
                    port,
                    "[NETWORK-HARDENING] Status: {status} ({c} critical, {w} warnings)"
                );
                // The seed's format: ['time_wait_sockets', 'connection_limits'].
                let names: Vec<String> = r.warnings.iter().map(|w| format!("'{w}'")).collect();
                tracing::warn!(
                    port,
                    "[PORT-MANAGER] Network warnings for port {port}: [{}]",
                    names.join(", ")
                );
            }
        }
        tracing::info!(
            port,
            service = %allocation.service,
            purpose = %allocation.purpose,
            network_health = %allocation.network_health,
            "[PORT-MANAGER] ✅ Allocated port {port} for {} from managed range ({})",
            allocation.service,
            self.cfg.ranges
        );
        Ok(Granted {
            allocation,
            warnings,
            report,
        })
    }

    fn quarantine_left(
        &self,
        st: &State,
        port: u16,
        service: Option<&str>,
        now: i64,
    ) -> Option<(u64, String)> {
        let h = st.history.get(&port)?;
        // Quarantine protects the next service from the previous owner's stale connections; a
        // service getting its own port back inherits only its own.
        (h.quarantine_until_ms > now && Some(h.last_service.as_str()) != service)
            .then(|| ((h.quarantine_until_ms - now) as u64, h.last_service.clone()))
    }

    fn claim_requested(
        &self,
        st: &mut State,
        port: u16,
        service: Option<&str>,
        now: i64,
        snap: Option<&SystemSnapshot>,
    ) -> Result<(u16, Option<Report>), PortsError> {
        if let Some(a) = st.leases.get(&port).cloned() {
            match a.death_reason(now) {
                Some(reason) => {
                    self.reclaim_locked(st, port, reason, now)?;
                }
                None => {
                    return Err(PortsError::HeldBy {
                        port,
                        service: a.service,
                        pid: a.pid,
                    });
                }
            }
        }
        if let Some((remaining_ms, last_service)) = self.quarantine_left(st, port, service, now) {
            return Err(PortsError::Quarantined {
                port,
                remaining_ms,
                last_service,
            });
        }
        let (outcome, report) = self.free_check(port, snap);
        let boxed = || report.clone().map(Box::new);
        match outcome {
            PortFinding::Bindable => Ok((port, report.clone())),
            PortFinding::InUse(detail) => Err(PortsError::InUse {
                port,
                detail,
                holder: holder_of(port),
            }),
            // Refused for a reason other than a listener: the host will not let it be bound.
            PortFinding::Blocked(detail) | PortFinding::Unusable(detail) => {
                Err(PortsError::Blocked {
                    port,
                    detail,
                    report: boxed(),
                })
            }
        }
    }

    /// The service's sticky port when it is free, else the least recently used free port.
    fn pick_free(
        &self,
        st: &State,
        service: Option<&str>,
        now: i64,
        snap: Option<&SystemSnapshot>,
    ) -> Result<(u16, Option<Report>), PortsError> {
        let sticky = service
            .and_then(|s| st.sticky.get(s))
            .copied()
            .filter(|p| self.cfg.ranges.contains(*p) && !st.leases.contains_key(p));
        let (mut quarantined, mut unavailable, mut blocked_count) = (0, 0, 0);
        let mut blocked = None;
        let idle = st
            .idle
            .iter()
            .map(|(_, p)| *p)
            .filter(|p| Some(*p) != sticky);
        for port in sticky.into_iter().chain(idle) {
            if self.quarantine_left(st, port, service, now).is_some() {
                quarantined += 1;
                continue;
            }
            let (outcome, report) = self.free_check(port, snap);
            match outcome {
                PortFinding::Bindable => return Ok((port, report)),
                PortFinding::Blocked(detail) => {
                    // A finding about this port only: try the next one, keep it for the answer.
                    tracing::warn!(port, %detail, "[NETWORK-HARDENING] port blocked; trying the next candidate");
                    blocked.get_or_insert((port, detail, report));
                    blocked_count += 1;
                    unavailable += 1;
                }
                _ => unavailable += 1,
            }
        }
        // Every candidate refused by the host: that is a host problem, not a full range.
        if let Some((port, detail, report)) =
            blocked.filter(|_| blocked_count == unavailable && quarantined == 0)
        {
            return Err(PortsError::Blocked {
                port,
                detail,
                report: report.map(Box::new),
            });
        }
        let mut by_service: HashMap<&str, usize> = HashMap::new();
        for a in st.leases.values() {
            *by_service.entry(a.service.as_str()).or_default() += 1;
        }
        let mut holders: Vec<(String, usize)> = by_service
            .into_iter()
            .map(|(s, n)| (s.to_string(), n))
            .collect();
        holders.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Err(PortsError::Exhausted {
            ranges: self.cfg.ranges.to_string(),
            held: st.leases.len(),
            quarantined,
            unavailable,
            holders,
        })
    }

    fn record(
        &self,
        st: &mut State,
        v: ValidAllocate,
        port: u16,
        caller: &Caller,
        now: i64,
        network_health: String,
    ) -> Result<Allocation, PortsError> {
        let lease_token = new_token().map_err(PortsError::Token)?;
        let derived_service = v.derived_service;
        let allocation = Allocation {
            port,
            service: v.service,
            purpose: v.purpose,
            started_by: v.started_by,
            pid: v.owner.map(|(pid, _)| pid),
            pid_start_time: v.owner.map(|(_, start)| start),
            owner_uid: caller.uid,
            labels: v.labels,
            lease_token,
            ttl_seconds: v.ttl_seconds,
            allocated_at_ms: now,
            renewed_at_ms: None,
            expires_at_ms: v.ttl_seconds.map(|t| now + (t as i64) * 1000),
            health: Health::Allocated,
            request_count: 0,
            error_count: 0,
            network_health,
        };
        st.store.insert(&allocation)?;
        let last_used = st.history.get(&port).map_or(0, |h| h.released_at_ms);
        st.idle.remove(&(last_used, port));
        if !derived_service {
            st.sticky.insert(allocation.service.clone(), port);
        }
        st.leases.insert(port, allocation.clone());
        Ok(allocation)
    }

    /// Port lookups for release/renew/get: an allocation kept outside today's ranges can still
    /// be addressed; any other port outside them is a bad argument.
    fn leased_port(&self, st: &State, port: u32) -> Result<u16, PortsError> {
        if let Ok(p) = u16::try_from(port) {
            if st.leases.contains_key(&p) {
                return Ok(p);
            }
        }
        let p = managed_port("port", port, &self.cfg.ranges)
            .map_err(|v| PortsError::Invalid(vec![v]))?;
        Err(PortsError::NotAllocated { port: p })
    }

    pub fn release(
        &self,
        port: u32,
        token: Option<&str>,
        caller: &Caller,
    ) -> Result<Released, PortsError> {
        let mut st = self.lock();
        let port = self.leased_port(&st, port)?;
        let a = st
            .leases
            .get(&port)
            .cloned()
            .ok_or(PortsError::NotAllocated { port })?;
        a.authorizes(token, caller)
            .map_err(|reason| PortsError::PermissionDenied { port, reason })?;
        let now = now_ms();
        let until = self.retire_locked(&mut st, &a, now)?;
        drop(st);
        tracing::info!(port, service = %a.service, "[PORT-MANAGER] Released port {port}");
        Ok(Released {
            allocation: a,
            quarantine_until_ms: until,
        })
    }

    /// Deletes the allocation and starts its port's quarantine (store first, then memory).
    fn retire_locked(&self, st: &mut State, a: &Allocation, now: i64) -> Result<i64, PortsError> {
        let until = now + self.cfg.quarantine.as_millis() as i64;
        let h = PortHistory {
            port: a.port,
            last_service: a.service.clone(),
            released_at_ms: now,
            quarantine_until_ms: until,
        };
        st.store.release(&h)?;
        st.leases.remove(&a.port);
        st.history.insert(a.port, h);
        if self.cfg.ranges.contains(a.port) {
            st.idle.insert((now, a.port));
        }
        Ok(until)
    }

    fn reclaim_locked(
        &self,
        st: &mut State,
        port: u16,
        reason: String,
        now: i64,
    ) -> Result<Reclaimed, PortsError> {
        let mut a = st
            .leases
            .get(&port)
            .cloned()
            .ok_or(PortsError::NotAllocated { port })?;
        self.retire_locked(st, &a, now)?;
        a.health = Health::Dead;
        tracing::warn!(port, service = %a.service, %reason, "[PORT-MANAGER] Reclaimed port {port}");
        Ok(Reclaimed {
            allocation: a,
            reason,
        })
    }

    fn sweep_locked(&self, st: &mut State, now: i64) -> Result<Vec<Reclaimed>, PortsError> {
        // One /proc read per owner, not per allocation: a test process that picked a thousand
        // ports is checked once per pass.
        let mut alive: HashMap<(i32, u64), bool> = HashMap::new();
        let mut is_alive = |pid, start| {
            *alive
                .entry((pid, start))
                .or_insert_with(|| super::process::is_alive(pid, start))
        };
        let dead: Vec<(u16, String)> = st
            .leases
            .values()
            .filter_map(|a| a.death_reason_with(now, &mut is_alive).map(|r| (a.port, r)))
            .collect();
        dead.into_iter()
            .map(|(port, reason)| self.reclaim_locked(st, port, reason, now))
            .collect()
    }

    /// Health from the socket table (`listening`: the ports with a TCP listener): a port whose
    /// owner listens is active; one that was active and listens no more is unhealthy. Changes
    /// are stored; the allocations that changed are returned with their previous health.
    pub fn observe_listeners(
        &self,
        listening: &HashSet<u16>,
    ) -> Result<Vec<(Allocation, Health)>, PortsError> {
        let mut st = self.lock();
        let changed: Vec<(Allocation, Health)> = st
            .leases
            .values()
            .filter_map(|a| {
                let health = health_seen(listening.contains(&a.port), a.health);
                (health != a.health).then(|| {
                    (
                        Allocation {
                            health,
                            ..a.clone()
                        },
                        a.health,
                    )
                })
            })
            .collect();
        for (a, before) in &changed {
            st.store.update(a)?;
            st.leases.insert(a.port, a.clone());
            tracing::info!(
                port = a.port,
                service = %a.service,
                "[PORT-MANAGER] Port {} ({}): {} -> {}",
                a.port,
                a.service,
                before.as_str(),
                a.health.as_str()
            );
        }
        Ok(changed)
    }

    /// Reclaims every allocation whose owner is dead (process gone, lease expired).
    pub fn sweep(&self) -> Result<Vec<Reclaimed>, PortsError> {
        let mut st = self.lock();
        self.sweep_locked(&mut st, now_ms())
    }

    pub fn renew(&self, req: RenewRequest, caller: &Caller) -> Result<Allocation, PortsError> {
        if let Some(ttl) = req.ttl_seconds {
            valid_ttl("ttl_seconds", ttl).map_err(|v| PortsError::Invalid(vec![v]))?;
        }
        let mut st = self.lock();
        let port = self.leased_port(&st, req.port)?;
        let mut a = st
            .leases
            .get(&port)
            .cloned()
            .ok_or(PortsError::NotAllocated { port })?;
        a.authorizes(req.lease_token.as_deref(), caller)
            .map_err(|reason| PortsError::PermissionDenied { port, reason })?;
        let now = now_ms();
        if let Some(reason) = a.death_reason(now) {
            self.reclaim_locked(&mut st, port, reason.clone(), now)?;
            return Err(PortsError::LeaseDead { port, reason });
        }
        if let Some(ttl) = req.ttl_seconds {
            a.ttl_seconds = Some(ttl);
        }
        if let Some(ttl) = a.ttl_seconds {
            a.expires_at_ms = Some(now + (ttl as i64) * 1000);
        }
        a.renewed_at_ms = Some(now);
        a.request_count = a.request_count.saturating_add(req.requests_delta);
        a.error_count = a.error_count.saturating_add(req.errors_delta);
        st.store.update(&a)?;
        st.leases.insert(port, a.clone());
        Ok(a)
    }

    pub fn get(&self, port: u32) -> Result<Allocation, PortsError> {
        let st = self.lock();
        let port = self.leased_port(&st, port)?;
        st.leases
            .get(&port)
            .cloned()
            .ok_or(PortsError::NotAllocated { port })
    }

    pub fn list(&self, service: Option<&str>) -> Vec<Allocation> {
        let st = self.lock();
        st.leases
            .values()
            .filter(|a| service.is_none_or(|s| a.service == s))
            .cloned()
            .collect()
    }

    pub fn status(&self) -> RangeStatus {
        let (idle, allocated, quarantined): (Vec<u16>, usize, usize) = {
            let st = self.lock();
            let now = now_ms();
            let mut q = 0;
            let idle = st
                .idle
                .iter()
                .map(|(_, p)| *p)
                .filter(|p| {
                    let rest = st
                        .history
                        .get(p)
                        .is_some_and(|h| h.quarantine_until_ms > now);
                    q += usize::from(rest);
                    !rest
                })
                .collect();
            let allocated = st
                .leases
                .keys()
                .filter(|p| self.cfg.ranges.contains(**p))
                .count();
            (idle, allocated, q)
        };
        // Probing happens outside the lock: status must not stall allocations.
        let unavailable = idle
            .iter()
            .filter(|p| !firewall::probe(**p).finding().is_bindable())
            .count();
        RangeStatus {
            ranges: self.cfg.ranges.clone(),
            total: self.cfg.ranges.total(),
            allocated,
            available: idle.len() - unavailable,
            quarantined,
            unavailable,
            quarantine: self.cfg.quarantine,
        }
    }

    /// The free check for each port, without allocating anything.
    pub fn check_ports(&self, ports: &[u16]) -> Vec<PortVerdict> {
        let now = now_ms();
        ports
            .iter()
            .map(|&port| {
                let in_managed_range = self.cfg.ranges.contains(port);
                let known = {
                    let st = self.lock();
                    if let Some(a) = st.leases.get(&port) {
                        Some((
                            PortVerdictState::Allocated,
                            format!("held by service '{}'", a.service),
                        ))
                    } else {
                        st.history
                            .get(&port)
                            .filter(|h| h.quarantine_until_ms > now)
                            .map(|h| {
                                (
                                    PortVerdictState::Quarantined,
                                    format!(
                                        "released by '{}', quarantined for {} ms more",
                                        h.last_service,
                                        h.quarantine_until_ms - now
                                    ),
                                )
                            })
                    }
                };
                let (state, reason) =
                    known.unwrap_or_else(|| match firewall::probe(port).finding() {
                        PortFinding::Bindable if in_managed_range => {
                            (PortVerdictState::Free, "free".into())
                        }
                        PortFinding::Bindable => (
                            PortVerdictState::OutsideRange,
                            "bindable, but outside the managed ranges".into(),
                        ),
                        PortFinding::InUse(detail) => {
                            let reason = match holder_of(port) {
                                Some(holder) => format!("{detail}; held by {holder}"),
                                None => detail,
                            };
                            (PortVerdictState::InUse, reason)
                        }
                        PortFinding::Blocked(detail) | PortFinding::Unusable(detail) => {
                            (PortVerdictState::Blocked, detail)
                        }
                    });
                PortVerdict {
                    port,
                    state,
                    reason,
                    in_managed_range,
                }
            })
            .collect()
    }
}
