//! The allocator: picks ports, records owners, releases, renews and reclaims. One mutex guards
//! the in-memory index and the SQLite connection together, so a port can never be handed to two
//! live owners: the decision and its durable record happen under the same lock, and the reply
//! goes out only after the commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::availability::Availability;
use super::clock::{Clock, Now};
use super::counters::Counters;
use super::error::{PortsError, Resting};
use super::events_store::LogBounds;
use super::fields::{managed_port, valid_ttl};
use super::host::{Host, RealHost};
use super::lease::{new_token, Allocation, Caller, Health, ReclaimReason, Vitality};
use super::marker;
use super::names::ServiceNames;
use super::pool::{Pool, Pools, SocketsHeld};
use super::process::{Liveness, ProcessIdentity};
use super::project_claim::ProjectStart;
use super::projects::{ProjectKey, ProjectPorts};
use super::quota::{Holdings, Quotas};
use super::range::RangeSet;
use super::storage::StorageHealth;
use super::store::{PortHistory, Store, StoreError};
use super::validate::{ttl_change_allowed, AllocateRequest, RenewRequest, ValidAllocate};
use crate::events::{Event, EventBus, EventDetail, NewEvent};
use crate::network::gate::findings;
use crate::network::{NetworkGate, PortFinding, Report, SystemSnapshot};

#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// The service pool.
    pub ranges: RangeSet,
    /// The test pool (None: off; test clients then draw from the service pool).
    pub test_pool: Option<RangeSet>,
    /// How long a released port rests before another service may have it (TIME_WAIT length).
    pub quarantine: Duration,
    pub state_path: PathBuf,
    /// What one uid and one service may hold.
    pub quotas: Quotas,
    /// Start even when the database is behind its marker (committed changes were lost).
    pub accept_state_loss: bool,
}

/// A successful allocation.
#[derive(Debug, Clone)]
pub struct Granted {
    pub allocation: Allocation,
    /// What the caller should hear that did not refuse the allocation: a preferred port that
    /// cannot be had, then the network findings.
    pub warnings: Vec<String>,
    /// The pre-allocation network report (None when the allocator runs without a gate, or
    /// for a reused allocation: nothing new was handed out).
    pub report: Option<Report>,
    /// An existing allocation handed back on request (`reuse`), not a new one.
    pub reused: bool,
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
    pub reason: ReclaimReason,
    /// The reason in words ("process 12 exited").
    pub detail: String,
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
    /// Ranges that overlap the kernel's ephemeral range (ip_local_port_range).
    pub warnings: Vec<String>,
}

pub(super) struct State {
    pub(super) store: Store,
    pub(super) leases: BTreeMap<u16, Allocation>,
    history: HashMap<u16, PortHistory>,
    sticky: HashMap<String, u16>,
    /// Managed ports without a lease, per pool, least recently used first.
    idle: Idle,
    /// Where the event log stands.
    pub(super) log: LogBounds,
    /// Which unleased ports are unusable now (listeners, refused binds), for Status.
    pub(super) availability: Availability,
    /// Ports held per uid and per service, for the quotas.
    holdings: Holdings,
    /// Which uid each service name belongs to.
    names: ServiceNames,
    /// The ports projects remember.
    pub(super) projects: ProjectPorts,
}

/// Per pool, the managed ports without a lease: (last released at, port), least recently used
/// first.
#[derive(Debug, Default)]
struct Idle {
    service: BTreeSet<(i64, u16)>,
    test: BTreeSet<(i64, u16)>,
}

impl Idle {
    fn of(&self, pool: Pool) -> &BTreeSet<(i64, u16)> {
        match pool {
            Pool::Service => &self.service,
            Pool::Test => &self.test,
        }
    }

    fn of_mut(&mut self, pool: Pool) -> &mut BTreeSet<(i64, u16)> {
        match pool {
            Pool::Service => &mut self.service,
            Pool::Test => &mut self.test,
        }
    }
}

impl State {
    /// `port`'s release, while the port rests in quarantine after it.
    pub(super) fn resting(&self, port: u16, now: Now) -> Option<Resting> {
        self.history
            .get(&port)
            .filter(|h| !h.quarantine_until.passed(now))
            .map(|h| Resting {
                service: h.last_service.clone(),
                released_at_ms: h.released_at_ms,
                until_ms: h.quarantine_until.wall_ms,
            })
    }

    /// The service that released `port` and the milliseconds its quarantine has left, while it
    /// rests.
    pub(super) fn quarantined(&self, port: u16, now: Now) -> Option<(String, i64)> {
        self.history
            .get(&port)
            .filter(|h| !h.quarantine_until.passed(now))
            .map(|h| (h.last_service.clone(), h.quarantine_until.left_ms(now)))
    }
}

pub struct Allocator {
    pub(super) cfg: AllocatorConfig,
    pools: Pools,
    state: Mutex<State>,
    /// Every committed event goes here, in sequence order, after its commit.
    pub(super) bus: Arc<EventBus>,
    pub(super) counters: Counters,
    /// Network checks run before every allocation; without one only the probe bind runs.
    pub(super) gate: Option<Arc<NetworkGate>>,
    /// The time, the probe bind and process liveness.
    pub(super) host: Arc<dyn Host>,
    /// Owner checks that could not read the owner's process (kept, never reclaimed).
    unknown_owner_checks: AtomicU64,
    /// The newest sequence the marker beside the database records (u64::MAX: none written).
    marker_at: AtomicU64,
    /// Whether writes to the state work.
    pub(super) storage: StorageHealth,
    /// Whether the last sweep met an unreadable owner: logged on each change, not each sweep.
    owners_unreadable: AtomicBool,
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

impl Allocator {
    /// Opens the state, then runs the repair pass: leases whose owner is dead are reclaimed,
    /// the rest are kept (never dropped) with their health refreshed from the socket table.
    pub fn open(cfg: AllocatorConfig) -> Result<(Self, RepairReport), PortsError> {
        Self::open_with_host(cfg, Arc::new(RealHost::default()))
    }

    /// [`Allocator::open`] reading time from `clock`.
    pub fn open_with_clock(
        cfg: AllocatorConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, RepairReport), PortsError> {
        Self::open_with_host(cfg, Arc::new(RealHost::new(clock)))
    }

    /// [`Allocator::open`] on `host`: its clock, its probe bind, its processes.
    pub fn open_with_host(
        cfg: AllocatorConfig,
        host: Arc<dyn Host>,
    ) -> Result<(Self, RepairReport), PortsError> {
        let pools = Pools::new(cfg.ranges.clone(), cfg.test_pool.clone())
            .map_err(|rule| PortsError::invalid("test_range", rule))?;
        let mut store = Store::open(&cfg.state_path)?;
        store.quick_check()?;
        let snap = store.load(host.now())?;
        let log = store.log_bounds()?;
        let lost = match marker::read(&cfg.state_path) {
            Ok(Some(m)) => marker::shrank(&m, log.last),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if let Some(why) = lost {
            if !cfg.accept_state_loss {
                return Err(StoreError::Lost(why).into());
            }
            tracing::error!("{why}; starting anyway with what is left (--accept-state-loss)");
        }
        let sticky = snap.sticky();
        let history: HashMap<u16, PortHistory> =
            snap.history.into_iter().map(|h| (h.port, h)).collect();
        let leases: BTreeMap<u16, Allocation> =
            snap.allocations.into_iter().map(|a| (a.port, a)).collect();
        let mut holdings = Holdings::default();
        leases
            .values()
            .for_each(|a| holdings.add(pools.of(a.port).unwrap_or_default(), a));
        let names = ServiceNames::from_stored(snap.service_owners);
        let projects = ProjectPorts::from_stored(snap.projects);
        let mut idle = Idle::default();
        for pool in Pool::ALL {
            *idle.of_mut(pool) = pools
                .get(pool)
                .into_iter()
                .flat_map(RangeSet::ports)
                .filter(|p| !leases.contains_key(p))
                .map(|p| (history.get(&p).map_or(0, |h| h.released_at_ms), p))
                .collect();
        }
        let state = State {
            store,
            leases,
            history,
            sticky,
            idle,
            log,
            availability: Availability::default(),
            holdings,
            names,
            projects,
        };
        let allocator = Self {
            cfg,
            pools,
            state: Mutex::new(state),
            bus: Arc::new(EventBus::default()),
            counters: Counters::default(),
            gate: None,
            host,
            unknown_owner_checks: AtomicU64::new(0),
            marker_at: AtomicU64::new(u64::MAX),
            storage: StorageHealth::default(),
            owners_unreadable: AtomicBool::new(false),
        };
        let report = allocator.repair()?;
        Ok((allocator, report))
    }

    /// The ports allocated now (without copying the allocations).
    pub fn allocated_ports(&self) -> std::collections::HashSet<u16> {
        self.lock().leases.keys().copied().collect()
    }

    /// Records how far the state got beside the database (when it moved since the last time):
    /// the watchdog's reaper calls it every second, and it runs once more at shutdown.
    pub fn write_marker(&self) {
        let m = {
            let st = self.lock();
            marker::Marker {
                last_sequence: st.log.last,
                allocations: st.leases.len(),
            }
        };
        if self.marker_at.swap(m.last_sequence, Ordering::AcqRel) == m.last_sequence {
            return;
        }
        if let Err(e) = marker::write(&self.cfg.state_path, &m) {
            self.marker_at.store(u64::MAX, Ordering::Release);
            tracing::warn!(error = %e, "cannot write the state marker");
        }
    }

    /// The service pool's ranges.
    pub fn ranges(&self) -> &RangeSet {
        &self.cfg.ranges
    }

    /// Both pools.
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Whether `a`'s owner lives and its lease runs, asking the host about the process.
    pub(super) fn vitality(&self, a: &Allocation, now: Now) -> Vitality {
        a.vitality_with(now, |id| self.host.liveness(id))
    }

    /// The time on the allocator's clock.
    pub fn now(&self) -> Now {
        self.host.now()
    }

    /// What the allocator did since start-up.
    pub fn counters(&self) -> super::counters::Totals {
        self.counters.totals()
    }

    /// Runs the network checks before every allocation: system-wide critical findings block
    /// all allocations, port-specific ones make the allocator try the next port.
    pub fn with_gate(mut self, gate: Arc<NetworkGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Who may hold how many event streams (the defaults until this is called).
    pub fn with_watcher_limits(mut self, limits: crate::events::WatcherLimits) -> Self {
        self.bus = Arc::new(EventBus::new(crate::events::WATCH_BUFFER, limits));
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
            return (self.host.probe(port), None);
        };
        let (report, finding) = gate.check_port(snap, port);
        // Without `firewall` among the blocking checks, a port the daemon may not bind (a
        // privileged port, for an unprivileged daemon) is handed out: the service may be able
        // to. The report still says critical.
        let finding = match finding {
            PortFinding::Blocked(_) if !gate.blocks(crate::network::names::FIREWALL) => {
                PortFinding::Bindable
            }
            other => other,
        };
        (finding, Some(report))
    }

    /// Numbers `ev`, has `write` store it together with the change it describes (one
    /// transaction), then publishes it. Nothing is published, and the sequence does not move,
    /// unless the write committed.
    pub(super) fn commit_event(
        &self,
        st: &mut State,
        now: Now,
        ev: NewEvent,
        write: impl FnOnce(&mut Store, &Event) -> Result<(), StoreError>,
    ) -> Result<Arc<Event>, PortsError> {
        let e = ev.numbered(st.log.last + 1, now.wall_ms);
        let written = write(&mut st.store, &e);
        if self.storage.note(&written) {
            self.storage_changed();
        }
        written?;
        st.log.last = e.sequence;
        let e = Arc::new(e);
        self.bus.publish(e.clone());
        Ok(e)
    }

    /// Stores `a`'s new health with its event.
    pub(super) fn set_health_locked(
        &self,
        st: &mut State,
        a: &Allocation,
        health: Health,
        why: &str,
        now: Now,
    ) -> Result<(), PortsError> {
        let before = a.health;
        let updated = Allocation {
            health,
            ..a.clone()
        };
        let message = format!(
            "Port {} ({}): {} -> {} ({why})",
            a.port,
            a.service,
            before.as_str(),
            health.as_str()
        );
        let detail = EventDetail::HealthChanged {
            from: before,
            to: health,
            why: why.to_string(),
        };
        self.commit_event(
            st,
            now,
            NewEvent::about(&updated, message, detail),
            |s, e| s.update(&updated, e),
        )?;
        st.leases.insert(a.port, updated);
        tracing::info!(
            port = a.port,
            service = %a.service,
            %why,
            "[PORT-MANAGER] Port {} ({}): {} -> {}",
            a.port,
            a.service,
            before.as_str(),
            health.as_str()
        );
        Ok(())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written record (SQLite rolls back
        // uncommitted work), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn repair(&self) -> Result<RepairReport, PortsError> {
        let mut st = self.lock();
        let now = self.host.now();
        let mut report = RepairReport::default();
        // The socket table's listeners, in one LISTEN-only sock_diag dump; without netlink, a
        // probe bind per port tells the same (EADDRINUSE means something listens).
        let listeners = crate::network::listening_ports()
            .map_err(|e| tracing::warn!(error = %e, "repair: no socket table; probing each port"))
            .ok();
        if let Some(set) = &listeners {
            st.availability.observe(set, self.pools.all());
        }
        let ports: Vec<u16> = st.leases.keys().copied().collect();
        for port in ports {
            let Some(a) = st.leases.get(&port).cloned() else {
                continue;
            };
            match self.vitality(&a, now) {
                Vitality::Dead(reason) => {
                    tracing::warn!(port, service = %a.service, reason = reason.as_str(), "repair: reclaiming allocation of a dead owner");
                    let r = self.reclaim_locked(&mut st, port, reason, now)?;
                    report.reclaimed.push(r);
                    continue;
                }
                Vitality::Unknown(why) => {
                    self.unknown_owner_checks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(port, service = %a.service, %why, "repair: cannot read the owner's process; keeping the allocation");
                }
                Vitality::Alive => {}
            }
            report.kept += 1;
            if !self.pools.all().contains(port) {
                tracing::warn!(port, service = %a.service, "repair: kept allocation outside the managed ranges; release it to drop it");
                report.outside_range.push(port);
            }
            let listening = match &listeners {
                Some(set) => set.contains(&port),
                None => match self.host.probe(port) {
                    PortFinding::InUse(_) => true,
                    // Nothing learnt about the port: its health stays as stored.
                    PortFinding::Unknown(_) => continue,
                    _ => false,
                },
            };
            let health = health_seen(listening, a.health);
            report.listening += usize::from(listening);
            if health != a.health {
                let why = if listening {
                    "listening at start-up"
                } else {
                    "not listening at start-up"
                };
                self.set_health_locked(&mut st, &a, health, why, now)?;
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
        let pool = req.pool;
        let range = self.pools.get(pool).ok_or_else(|| {
            PortsError::invalid(
                "pool",
                "the test pool is off on this daemon (test_range = \"none\"); ask for the service pool",
            )
        })?;
        let mut v = req.validate(range, caller.pid)?;
        // Handing back what the caller already holds needs no network checks.
        if v.reuse {
            if let Some(reused) = self.reuse_locked(&mut self.lock(), &v, caller)? {
                return Ok(reused);
            }
        }
        // Taken (or reused) outside the lock: a refresh must not stall other allocations.
        let snap = self.gate.as_ref().map(|g| (g, g.snapshot()));
        if let Some((report, blocking)) = snap.as_ref().and_then(|(g, s)| g.refusal(s)) {
            return Err(PortsError::NetworkCritical {
                report: Box::new(report),
                blocking,
            });
        }
        let snap = snap.as_ref().map(|(_, s)| s.as_ref());
        let mut st = self.lock();
        // Again under the lock that records: a reuse racing this one must not add a port.
        if let Some(reused) = self.reuse_locked(&mut st, &v, caller)? {
            return Ok(reused);
        }
        let now = self.host.now();
        // A project port: its live allocation handed back, or its recorded port tried first.
        let recorded = match self.project_start_locked(&mut st, &mut v, caller, range, now)? {
            ProjectStart::HandBack(granted) => return Ok(*granted),
            ProjectStart::Claim(port) => port,
        };
        if !v.derived_service {
            st.names.check(&v.service, caller.uid)?;
        }
        st.holdings.check(
            &self.cfg.quotas,
            pool,
            range.total(),
            caller.uid,
            &v.service,
        )?;
        // A made-up name identifies no service: it gets neither a sticky port nor the
        // quarantine exemption of a service taking its own port back.
        let service = (!v.derived_service).then_some(v.service.as_str());
        // A project taking its own port back is exempt from its rest, as a service is.
        let own = v.project.as_ref().map(|_| v.service.as_str()).or(service);
        let preferred = match v.prefer.or(recorded.filter(|_| v.port.is_none())) {
            Some(p) => self.claim_preferred(&mut st, p, own, now, snap)?,
            None => None,
        };
        let (port, report) = match (v.port, preferred) {
            (_, Some(found)) => found,
            (Some(p), None) => match self.claim_requested(&mut st, p, service, now, snap) {
                Ok(found) => found,
                Err(PortsError::InUse { port, detail, .. }) => {
                    drop(st);
                    // Naming the holder walks /proc: not under the lock every call waits on.
                    let holder = super::holders::holders(&[port], caller.uid).remove(&port);
                    return Err(PortsError::InUse {
                        port,
                        detail,
                        holder,
                    });
                }
                Err(e) => return Err(e),
            },
            (None, None) => {
                match self.pick_free(&mut st, pool, service, v.project.as_ref(), now, snap) {
                    Ok(found) => found,
                    Err(_) if !self.sweep_locked(&mut st, now)?.is_empty() => {
                        self.pick_free(&mut st, pool, service, v.project.as_ref(), now, snap)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let network_health = report
            .as_ref()
            .map(|r| r.status.as_str().to_string())
            .unwrap_or_default();
        let mut warnings = std::mem::take(&mut v.warnings);
        let allocation = self.record(&mut st, v, port, caller, now, network_health)?;
        drop(st);
        warnings.extend(report.as_ref().map(findings).unwrap_or_default());
        super::alloc_log::allocated(&allocation, report.as_ref(), snap, caller, range);
        Ok(Granted {
            allocation,
            warnings,
            report,
            reused: false,
        })
    }

    /// `prefer`: the port when it can be had now; None (any free port will do) when it is held,
    /// resting, in use or refused. Only a probe that could not run is an error.
    fn claim_preferred(
        &self,
        st: &mut State,
        port: u16,
        service: Option<&str>,
        now: Now,
        snap: Option<&SystemSnapshot>,
    ) -> Result<Option<(u16, Option<Report>)>, PortsError> {
        match self.claim_requested(st, port, service, now, snap) {
            Ok(found) => Ok(Some(found)),
            Err(e @ (PortsError::Unavailable { .. } | PortsError::Store(_))) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// How long `port` still rests, and who released it. Quarantine protects the next service
    /// from the previous owner's stale connections; a service getting its own port back inherits
    /// only its own. In the test pool the rest ends as soon as the kernel holds no socket on the
    /// port (TIME_WAIT included): `sockets` says, asked only for a port still resting by the
    /// clock.
    fn quarantine_left(
        &self,
        st: &State,
        port: u16,
        service: Option<&str>,
        now: Now,
        sockets: &mut SocketsHeld,
    ) -> Option<(u64, String)> {
        let h = st.history.get(&port)?;
        if h.quarantine_until.passed(now) || Some(h.last_service.as_str()) == service {
            return None;
        }
        if self.pools.of(port) == Some(Pool::Test) && !sockets.on(port) {
            return None;
        }
        Some((
            h.quarantine_until.left_ms(now) as u64,
            h.last_service.clone(),
        ))
    }

    fn claim_requested(
        &self,
        st: &mut State,
        port: u16,
        service: Option<&str>,
        now: Now,
        snap: Option<&SystemSnapshot>,
    ) -> Result<(u16, Option<Report>), PortsError> {
        if let Some(a) = st.leases.get(&port).cloned() {
            match self.vitality(&a, now) {
                Vitality::Dead(reason) => {
                    self.reclaim_locked(st, port, reason, now)?;
                }
                // An owner that cannot be read still holds its port.
                Vitality::Alive | Vitality::Unknown(_) => {
                    return Err(PortsError::HeldBy {
                        port,
                        service: a.service.clone(),
                        pid: a.pid(),
                    });
                }
            }
        }
        let mut sockets = SocketsHeld::OnPort;
        if let Some((remaining_ms, last_service)) =
            self.quarantine_left(st, port, service, now, &mut sockets)
        {
            return Err(PortsError::Quarantined {
                port,
                remaining_ms,
                last_service,
            });
        }
        let (outcome, report) = self.free_check(port, snap);
        st.availability.note_probe(port, &outcome);
        let boxed = || report.clone().map(Box::new);
        match outcome {
            PortFinding::Bindable => Ok((port, report.clone())),
            // The holder is named by the caller, outside the lock.
            PortFinding::InUse(detail) => Err(PortsError::InUse {
                port,
                detail,
                holder: None,
            }),
            // Refused for a reason other than a listener: the host will not let it be bound.
            PortFinding::Blocked(detail) | PortFinding::Unusable(detail) => {
                Err(PortsError::Blocked {
                    port,
                    detail,
                    report: boxed(),
                })
            }
            PortFinding::Unknown(detail) => Err(PortsError::Unavailable { reason: detail }),
        }
    }

    /// The service's sticky port when it is free, else the least recently used free port. What
    /// the probes found about the ports passed over is remembered for Status.
    fn pick_free(
        &self,
        st: &mut State,
        pool: Pool,
        service: Option<&str>,
        project: Option<&ProjectKey>,
        now: Now,
        snap: Option<&SystemSnapshot>,
    ) -> Result<(u16, Option<Report>), PortsError> {
        let mut passed_over = Vec::new();
        let picked = self.pick_free_noting(st, pool, service, project, now, snap, &mut passed_over);
        for (port, finding) in &passed_over {
            st.availability.note_probe(*port, finding);
        }
        picked
    }

    #[allow(clippy::too_many_arguments)]
    fn pick_free_noting(
        &self,
        st: &State,
        pool: Pool,
        service: Option<&str>,
        project: Option<&ProjectKey>,
        now: Now,
        snap: Option<&SystemSnapshot>,
        passed_over: &mut Vec<(u16, PortFinding)>,
    ) -> Result<(u16, Option<Report>), PortsError> {
        let range = self.pools.get(pool).unwrap_or(&self.cfg.ranges);
        // A service's last port, unless a project took it since and remembers it.
        let sticky = service
            .and_then(|s| st.sticky.get(s))
            .copied()
            .filter(|p| range.contains(*p) && !st.leases.contains_key(p))
            .filter(|p| !st.projects.reserved_against(*p, project));
        // One look at the socket table serves every resting candidate of this pick.
        let mut sockets = SocketsHeld::NotTaken;
        let (mut quarantined, mut unavailable, mut blocked_count) = (0, 0, 0);
        let mut first_free_in_ms: Option<u64> = None;
        let mut blocked = None;
        let idle = st
            .idle
            .of(pool)
            .iter()
            .map(|(_, p)| *p)
            .filter(|p| Some(*p) != sticky);
        // Ports other projects remember come last (a soft reservation, projects.rs).
        let idle = st.projects.unremembered_first(idle, project);
        for port in sticky.into_iter().chain(idle) {
            if let Some((left_ms, _)) = self.quarantine_left(st, port, service, now, &mut sockets) {
                quarantined += 1;
                first_free_in_ms = Some(first_free_in_ms.map_or(left_ms, |m| m.min(left_ms)));
                continue;
            }
            let (outcome, report) = self.free_check(port, snap);
            if !outcome.is_bindable() {
                passed_over.push((port, outcome.clone()));
            }
            match outcome {
                PortFinding::Bindable => return Ok((port, report)),
                // The probe itself failed (no descriptors): every other port would too, and a
                // guess could hand out a port in use.
                PortFinding::Unknown(detail) => {
                    return Err(PortsError::Unavailable { reason: detail })
                }
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
        let mut held = 0;
        for a in st.leases.values().filter(|a| range.contains(a.port)) {
            *by_service.entry(a.service.as_str()).or_default() += 1;
            held += 1;
        }
        let mut holders: Vec<(String, usize)> = by_service
            .into_iter()
            .map(|(s, n)| (s.to_string(), n))
            .collect();
        holders.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Err(PortsError::Exhausted {
            pool,
            ranges: range.to_string(),
            total: range.total(),
            held,
            quarantined,
            first_free_in_ms,
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
        now: Now,
        network_health: String,
    ) -> Result<Allocation, PortsError> {
        let lease_token = new_token().map_err(PortsError::Token)?;
        let derived_service = v.derived_service;
        let remembered = v.project.as_ref().and_then(|key| {
            let owner = st.projects.owner_for(&key.project, caller).ok()?;
            Some(
                st.projects
                    .write_for(key, &v.service, port, owner, now.wall_ms),
            )
        });
        let allocation = Allocation {
            port,
            service: v.service,
            purpose: v.purpose,
            started_by: v.started_by,
            owner: v.owner,
            owner_uid: caller.uid,
            labels: v.labels,
            lease_token,
            ttl_seconds: v.ttl_seconds,
            allocated_at_ms: now.wall_ms,
            renewed_at_ms: None,
            expires: v.ttl_seconds.map(|t| now.plus((t as i64) * 1000)),
            health: Health::Allocated,
            request_count: 0,
            error_count: 0,
            network_health,
            observed: None,
        };
        let message = format!("Allocated port {port} for {}", allocation.service);
        let bind_name = (!derived_service)
            .then(|| st.names.to_bind(&allocation.service, caller.uid))
            .flatten();
        self.commit_event(
            st,
            now,
            NewEvent::about(&allocation, message, EventDetail::Allocated),
            |s, e| s.insert(&allocation, e, bind_name, remembered.as_ref()),
        )?;
        if let Some(w) = remembered {
            st.projects.apply(w);
        }
        if let Some(uid) = bind_name {
            st.names.bind(&allocation.service, uid);
        }
        let pool = self.pools.of(port).unwrap_or_default();
        st.holdings.add(pool, &allocation);
        self.counters.allocated();
        let last_used = st.history.get(&port).map_or(0, |h| h.released_at_ms);
        st.idle.of_mut(pool).remove(&(last_used, port));
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
        let p = managed_port("port", port, self.pools.all())
            .map_err(|v| PortsError::Invalid(vec![v]))?;
        Err(PortsError::NotAllocated {
            port: p,
            resting: st.resting(p, self.host.now()),
        })
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
            .ok_or(PortsError::NotAllocated {
                port,
                resting: None,
            })?;
        a.authorizes(token, caller)
            .map_err(|reason| PortsError::PermissionDenied { port, reason })?;
        let now = self.host.now();
        let message = format!("Released port {port} ({})", a.service);
        let ev = NewEvent::about(&a, message, EventDetail::Released);
        let until = self.retire_locked(&mut st, &a, now, ev)?;
        self.counters.released();
        drop(st);
        tracing::info!(port, service = %a.service, "[PORT-MANAGER] Released port {port}");
        Ok(Released {
            allocation: a,
            quarantine_until_ms: until,
        })
    }

    /// Deletes the allocation, starts its port's quarantine and records `ev` (store first, then
    /// memory). Returns the end of the quarantine (wall time).
    pub(super) fn retire_locked(
        &self,
        st: &mut State,
        a: &Allocation,
        now: Now,
        ev: NewEvent,
    ) -> Result<i64, PortsError> {
        let until = now.plus(self.cfg.quarantine.as_millis() as i64);
        let h = PortHistory {
            port: a.port,
            last_service: a.service.clone(),
            released_at_ms: now.wall_ms,
            quarantine_until: until,
        };
        self.commit_event(st, now, ev, |s, e| s.release(&h, e))?;
        let pool = self.pools.of(a.port);
        if let Some(gone) = st.leases.remove(&a.port) {
            st.holdings.remove(pool.unwrap_or_default(), &gone);
        }
        st.history.insert(a.port, h);
        if let Some(pool) = pool {
            st.idle.of_mut(pool).insert((now.wall_ms, a.port));
        }
        Ok(until.wall_ms)
    }

    fn reclaim_locked(
        &self,
        st: &mut State,
        port: u16,
        reason: ReclaimReason,
        now: Now,
    ) -> Result<Reclaimed, PortsError> {
        let mut a = st
            .leases
            .get(&port)
            .cloned()
            .ok_or(PortsError::NotAllocated {
                port,
                resting: None,
            })?;
        a.health = Health::Dead;
        let detail = a.describe(reason, now);
        let message = format!("Reclaimed port {port} ({}): {detail}", a.service);
        let ev = NewEvent::about(&a, message, EventDetail::Reclaimed { reason });
        self.retire_locked(st, &a, now, ev)?;
        self.counters.reclaimed(reason);
        tracing::warn!(port, service = %a.service, reason = reason.as_str(), "[PORT-MANAGER] Reclaimed port {port}: {detail}");
        Ok(Reclaimed {
            allocation: a,
            reason,
            detail,
        })
    }

    /// Reclaims the allocations whose owner is certainly dead. One whose process cannot be read
    /// is kept: an I/O error says nothing about the owner.
    fn sweep_locked(&self, st: &mut State, now: Now) -> Result<Vec<Reclaimed>, PortsError> {
        let mut dead = Vec::new();
        let mut unreadable = Vec::new();
        // One /proc read per owner, not per allocation: a test process that picked a thousand
        // ports is checked once per pass.
        let mut seen: HashMap<ProcessIdentity, Liveness> = HashMap::new();
        for a in st.leases.values() {
            let liveness = |id: &ProcessIdentity| {
                seen.entry(id.clone())
                    .or_insert_with(|| self.host.liveness(id))
                    .clone()
            };
            match a.vitality_with(now, liveness) {
                Vitality::Dead(reason) => dead.push((a.port, reason)),
                Vitality::Unknown(why) => unreadable.push((a.port, why)),
                Vitality::Alive => {}
            }
        }
        self.note_unreadable(&unreadable);
        dead.into_iter()
            .map(|(port, reason)| self.reclaim_locked(st, port, reason, now))
            .collect()
    }

    /// Counts owner checks that could not read the owner, and logs when that starts and stops.
    fn note_unreadable(&self, unreadable: &[(u16, String)]) {
        self.unknown_owner_checks
            .fetch_add(unreadable.len() as u64, Ordering::Relaxed);
        let now_unreadable = !unreadable.is_empty();
        if self
            .owners_unreadable
            .swap(now_unreadable, Ordering::Relaxed)
            == now_unreadable
        {
            return;
        }
        match unreadable.first() {
            Some((port, why)) => tracing::warn!(
                ports = ?unreadable.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
                first_port = port,
                %why,
                "cannot read the owning processes of {} allocation(s); keeping them until they can be read",
                unreadable.len()
            ),
            None => tracing::info!("owning processes are readable again"),
        }
    }

    /// How many owner checks could not read the owner's process since start-up.
    pub fn unknown_owner_checks(&self) -> u64 {
        self.unknown_owner_checks.load(Ordering::Relaxed)
    }

    /// The managed ports that have a TCP listener, as one walk of the socket table saw them
    /// (the watchdog's pass): Status counts them as unavailable without probing.
    pub fn note_listeners(&self, listening: &HashSet<u16>) {
        self.lock()
            .availability
            .observe(listening, self.pools.all());
    }

    /// Reclaims every allocation whose owner is dead (process gone, lease expired).
    pub fn sweep(&self) -> Result<Vec<Reclaimed>, PortsError> {
        let mut st = self.lock();
        let now = self.host.now();
        self.sweep_locked(&mut st, now)
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
            .ok_or(PortsError::NotAllocated {
                port,
                resting: None,
            })?;
        a.authorizes(req.lease_token.as_deref(), caller)
            .map_err(|reason| PortsError::PermissionDenied { port, reason })?;
        ttl_change_allowed(&a, &req)?;
        let now = self.host.now();
        if let Vitality::Dead(reason) = self.vitality(&a, now) {
            let r = self.reclaim_locked(&mut st, port, reason, now)?;
            return Err(PortsError::LeaseDead {
                port,
                reason: r.detail,
            });
        }
        if let Some(ttl) = req.ttl_seconds {
            a.ttl_seconds = Some(ttl);
        }
        if let Some(ttl) = a.ttl_seconds {
            a.expires = Some(now.plus((ttl as i64) * 1000));
        }
        a.renewed_at_ms = Some(now.wall_ms);
        a.request_count = a.request_count.saturating_add(req.requests_delta);
        a.error_count = a.error_count.saturating_add(req.errors_delta);
        let message = match a.expires {
            Some(_) => format!(
                "Renewed port {port} ({}) for {} s",
                a.service,
                a.ttl_seconds.unwrap_or(0)
            ),
            None => format!("Port {port} ({}) reported its counters", a.service),
        };
        let detail = EventDetail::Renewed {
            requests_delta: req.requests_delta,
            errors_delta: req.errors_delta,
        };
        self.commit_event(
            &mut st,
            now,
            NewEvent::about(&a, message, detail),
            |s, e| s.update(&a, e),
        )?;
        st.leases.insert(port, a.clone());
        Ok(a)
    }

    pub fn get(&self, port: u32) -> Result<Allocation, PortsError> {
        let st = self.lock();
        let port = self.leased_port(&st, port)?;
        st.leases
            .get(&port)
            .cloned()
            .ok_or(PortsError::NotAllocated {
                port,
                resting: None,
            })
    }

    pub fn list(&self, service: Option<&str>) -> Vec<Allocation> {
        let st = self.lock();
        st.leases
            .values()
            .filter(|a| service.is_none_or(|s| a.service == s))
            .cloned()
            .collect()
    }

    /// Counts of the service pool's ports. Cheap: no port is probed while the socket table's
    /// listeners are known (the watchdog's pass notes them; an observation older than 2 s is
    /// retaken here with one LISTEN-only dump). Only without any socket table are the free
    /// ports probed one by one.
    pub fn status(&self) -> RangeStatus {
        self.refresh_availability();
        self.status_of(Pool::Service, &self.cfg.ranges)
    }

    /// Counts of the test pool's ports, when there is one. Its resting ports are those the
    /// kernel still holds a socket on (one census, only when any rests by the clock).
    pub fn test_pool_status(&self) -> Option<RangeStatus> {
        let range = self.pools.get(Pool::Test)?;
        self.refresh_availability();
        Some(self.status_of(Pool::Test, range))
    }

    fn refresh_availability(&self) {
        if self.lock().availability.is_recent() {
            return;
        }
        match crate::network::listening_ports() {
            Ok(listening) => self
                .lock()
                .availability
                .observe(&listening, self.pools.all()),
            Err(e) => {
                tracing::debug!(error = %e, "no socket table; probing the free ports");
                let idle: Vec<u16> = self.lock().idle.service.iter().map(|(_, p)| *p).collect();
                // Probing happens outside the lock: status must not stall allocations.
                let found: Vec<(u16, PortFinding)> =
                    idle.into_iter().map(|p| (p, self.host.probe(p))).collect();
                let mut st = self.lock();
                for (port, finding) in &found {
                    st.availability.note_probe(*port, finding);
                }
            }
        }
    }

    fn status_of(&self, pool: Pool, range: &RangeSet) -> RangeStatus {
        let resting_by_clock = |st: &State, port: u16, now: Now| {
            st.history
                .get(&port)
                .is_some_and(|h| !h.quarantine_until.passed(now))
        };
        // The test pool's rest is exact: the socket table is read outside the lock, once.
        let sockets = (pool == Pool::Test)
            .then(|| {
                let st = self.lock();
                let now = self.host.now();
                st.idle
                    .test
                    .iter()
                    .any(|(_, p)| resting_by_clock(&st, *p, now))
            })
            .filter(|any| *any)
            .map(|_| crate::network::take_census(crate::network::CensusRequest::FULL).ok());
        let st = self.lock();
        let now = self.host.now();
        let (mut quarantined, mut unavailable, mut free) = (0, 0, 0);
        for port in st.idle.of(pool).iter().map(|(_, p)| *p) {
            let resting = resting_by_clock(&st, port, now)
                && match &sockets {
                    None => true,
                    Some(census) => census.as_ref().is_none_or(|c| c.has_local_port(port)),
                };
            if resting {
                quarantined += 1;
            } else if st.availability.is_unavailable(port) {
                unavailable += 1;
            } else {
                free += 1;
            }
        }
        let allocated = st.leases.keys().filter(|p| range.contains(**p)).count();
        RangeStatus {
            ranges: range.clone(),
            total: range.total(),
            allocated,
            available: free,
            quarantined,
            unavailable,
            quarantine: self.cfg.quarantine,
            warnings: match pool {
                Pool::Service => st.availability.ephemeral_warnings(self.pools.all()),
                Pool::Test => Vec::new(),
            },
        }
    }
}

impl Drop for Allocator {
    /// The last word on how far the state got, for the next start.
    fn drop(&mut self) {
        self.write_marker();
    }
}
