//! One watchdog pass: one walk of the socket table (the diagnostics snapshot, which also keeps
//! the managed ports' sockets), then per allocation who listens and what connections it has,
//! the owners' processes, listeners on free ports, the network status and I/O rates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use super::owners::{held_by_owner, FdTables, OwnerCheck};
use super::processes::ProcessMonitor;
use super::{PassMemory, Watchdog};
use crate::events::{CheckMove, EventDetail, Holder, NewEvent};
use crate::network::{interface_counters, processes_holding, Report, SocketCensus};
use crate::ports::{Allocation, Listener, Observation, PortsError};

fn holders(inodes: &HashSet<u64>) -> Vec<Holder> {
    processes_holding(inodes)
        .into_iter()
        .map(|p| Holder {
            pid: p.pid,
            command: p.command,
        })
        .collect()
}

/// Who listens on `a`'s port, from the census and the owner's descriptors. A verdict is kept
/// while the same owner holds the same listening sockets: reading a busy owner's descriptor
/// table every pass would cost more than the rest of the pass.
fn listener_of(
    a: &Allocation,
    census: &SocketCensus,
    known: &ListenerCache,
    fresh: &mut ListenerCache,
    tables: &mut FdTables,
) -> Listener {
    let Some(sockets) = census.on_port(a.port).filter(|s| !s.listeners.is_empty()) else {
        return Listener::Nobody;
    };
    let Some(owner) = a.pid() else {
        return Listener::Unverified;
    };
    let mut inodes: Vec<u64> = sockets.listeners.iter().map(|(inode, _)| *inode).collect();
    inodes.sort_unstable();
    let key = (a.port, owner, inodes);
    let verdict = match known.get(&key) {
        Some(v) => v.clone(),
        None => identify(owner, &key.2.iter().copied().collect(), tables),
    };
    // An unknown verdict is asked again next pass.
    if verdict != Listener::Unverified {
        fresh.insert(key, verdict.clone());
    }
    verdict
}

/// Verdicts of earlier passes: (port, owner pid, listening socket inodes) -> who listens.
pub(super) type ListenerCache = HashMap<(u16, i32, Vec<u64>), Listener>;

fn identify(owner: i32, inodes: &HashSet<u64>, tables: &mut FdTables) -> Listener {
    match held_by_owner(owner, inodes, tables) {
        OwnerCheck::Owner => Listener::Owner,
        OwnerCheck::Unknown => Listener::Unverified,
        OwnerCheck::Other => match holders(inodes) {
            // The holders could not be named (their descriptors are unreadable): no claim.
            h if h.is_empty() => Listener::Unverified,
            h => Listener::Squatters(h),
        },
    }
}

impl Watchdog {
    /// One pass. Blocking: call it from the blocking pool.
    pub fn pass(&self) -> Result<(), PortsError> {
        let started = Instant::now();
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let allocations = self.allocator.list(None);
        let mut watch: Vec<u16> = self.allocator.ranges().ports().collect();
        watch.extend(allocations.iter().map(|a| a.port));
        let snap = self.gate.refresh_watching(&watch);
        let mut issues = 0;

        match snap.census.as_ref() {
            Ok(census) => {
                let pids: Vec<i32> = allocations.iter().filter_map(Allocation::pid).collect();
                let stats = memory
                    .processes
                    .get_or_insert_with(ProcessMonitor::new)
                    .sample(&pids);
                let at_ms = self.allocator.now().wall_ms;
                let known = std::mem::take(&mut memory.listeners);
                let mut fresh = ListenerCache::new();
                let mut tables = FdTables::default();
                let seen = allocations
                    .iter()
                    .map(|a| {
                        let connections = census
                            .on_port(a.port)
                            .map(|s| {
                                s.connections()
                                    .into_iter()
                                    .map(|(k, v)| (k.to_string(), v))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let listener = listener_of(a, census, &known, &mut fresh, &mut tables);
                        let obs = Observation {
                            at_ms,
                            listener,
                            connections,
                            process: a.pid().and_then(|p| stats.get(&p).cloned()),
                            was_active: false,
                        };
                        ((a.port, a.lease_token.clone()), obs)
                    })
                    .collect();
                // Only this pass's verdicts are kept: a port whose sockets changed is asked anew.
                memory.listeners = fresh;
                issues += self.allocator.apply_observations(seen)?.issues;
                self.allocator
                    .note_listeners(&census.watched_listening().collect());
                issues += self.outside_listeners(&mut memory, census)?;
            }
            // No socket table this pass: nothing is learnt about the ports, nothing changes.
            Err(e) => tracing::warn!(error = %e, "watchdog: no socket table this pass"),
        }

        let report = Report::from_checks(snap.checks.clone(), snap.duration);
        issues += self.network_change(&mut memory, &report)?;
        let rates = memory.rates.sample(Instant::now(), interface_counters());
        drop(memory);
        self.allocator
            .compact_events(self.cfg.events_keep, self.cfg.events_max_age)?;

        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let message = format!(
            "Watchdog pass: {} allocation(s) checked, {issues} issue(s), network {}, {duration_ms:.1} ms",
            allocations.len(),
            report.status.as_str()
        );
        if issues > 0 {
            tracing::info!("[WATCHDOG] {message}");
        } else {
            tracing::debug!("[WATCHDOG] {message}");
        }
        let detail = EventDetail::PassCompleted {
            allocations: allocations.len() as u64,
            issues,
            duration_ms: duration_ms.round() as u64,
        };
        let event = self
            .allocator
            .record_event(NewEvent::system(message, detail))?;
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.passes += 1;
        s.last_pass_at_ms = Some(event.at_ms);
        s.last_pass_duration_ms = duration_ms;
        s.pass_durations.observe(duration_ms / 1000.0);
        s.issues_detected += issues;
        s.network_status = report.status.as_str().to_string();
        if rates.is_some() {
            s.rates = rates;
        }
        Ok(())
    }

    /// Free ports of the managed range that something outside portwarden listens on: each is
    /// reported once when it appears and once when it goes.
    fn outside_listeners(
        &self,
        memory: &mut PassMemory,
        census: &SocketCensus,
    ) -> Result<u64, PortsError> {
        let ranges = self.allocator.ranges();
        let allocated = self.allocator.allocated_ports();
        let now: HashSet<u16> = census
            .watched_listening()
            .filter(|p| ranges.contains(*p) && !allocated.contains(p))
            .collect();
        let mut issues = 0;
        let mut fresh: BTreeMap<u16, Vec<Holder>> = BTreeMap::new();
        for port in &now {
            if let Some(known) = memory.outside.remove(port) {
                fresh.insert(*port, known);
                continue;
            }
            let inodes = census
                .on_port(*port)
                .map(|s| s.listeners.iter().map(|(i, _)| *i).collect())
                .unwrap_or_default();
            let who = holders(&inodes);
            let named = if who.is_empty() {
                "a process outside portwarden".to_string()
            } else {
                who.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let message = format!("Port {port} in the managed range is used by {named}");
            tracing::warn!(port, "[WATCHDOG] {message}");
            let ev = NewEvent {
                port: Some(*port),
                ..NewEvent::system(
                    message,
                    EventDetail::OutsideListenerSeen {
                        holders: who.clone(),
                    },
                )
            };
            self.allocator.record_event(ev)?;
            issues += 1;
            fresh.insert(*port, who);
        }
        for (port, _) in std::mem::take(&mut memory.outside) {
            if allocated.contains(&port) {
                continue; // now allocated: its listener is the service's
            }
            let message = format!("Port {port} in the managed range is free again");
            tracing::info!(port, "[WATCHDOG] {message}");
            let ev = NewEvent {
                port: Some(port),
                ..NewEvent::system(message, EventDetail::OutsideListenerGone)
            };
            self.allocator.record_event(ev)?;
        }
        memory.outside = fresh;
        Ok(issues)
    }

    /// An event when the overall network status changed since the last pass (or is not healthy
    /// at the first), naming the checks that moved.
    fn network_change(&self, memory: &mut PassMemory, report: &Report) -> Result<u64, PortsError> {
        let statuses: HashMap<String, String> = report
            .checks
            .iter()
            .map(|c| (c.name.clone(), c.status.as_str().to_string()))
            .collect();
        let overall = report.status.as_str().to_string();
        let previous = memory.network.replace((overall.clone(), statuses.clone()));
        let (from, before) = match previous {
            Some((from, _)) if from == overall => return Ok(0),
            Some((from, before)) => (from, before),
            None if overall == "healthy" => return Ok(0),
            None => (String::new(), HashMap::new()),
        };
        let moved: Vec<CheckMove> = report
            .checks
            .iter()
            .filter(|c| before.get(&c.name).map(String::as_str) != Some(c.status.as_str()))
            .filter(|c| !before.is_empty() || c.status.as_str() != "ok")
            .map(|c| CheckMove {
                check: c.name.clone(),
                from: before.get(&c.name).cloned().unwrap_or_default(),
                to: c.status.as_str().to_string(),
                note: c.note.clone(),
            })
            .collect();
        let names: Vec<String> = moved
            .iter()
            .map(|m| format!("{} -> {}", m.check, m.to))
            .collect();
        let message = if from.is_empty() {
            format!(
                "[NETWORK-HARDENING] Status: {overall} ({})",
                names.join(", ")
            )
        } else {
            format!(
                "[NETWORK-HARDENING] Status: {from} -> {overall} ({})",
                names.join(", ")
            )
        };
        tracing::warn!("{message}");
        let worse = rank(&overall) > rank(&from);
        let detail = EventDetail::NetworkStatusChanged {
            from,
            to: overall,
            moved,
        };
        self.allocator
            .record_event(NewEvent::system(message, detail))?;
        Ok(u64::from(worse))
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "critical" => 3,
        "warning" => 2,
        "healthy" => 1,
        _ => 0,
    }
}
