//! What the watchdog saw on each allocated port, applied to the allocations: health moves
//! (allocated -> active -> unhealthy, and back), squatters seen and gone, CLOSE_WAIT growth.
//! Every change is stored with its event; the observation itself (listener, connections, the
//! owner's process) is kept in memory for Get/List until the next pass.

use std::collections::BTreeMap;

use super::allocator::Allocator;
use super::error::PortsError;
use super::lease::Health;
use crate::events::{EventDetail, Holder, NewEvent};

/// Who listens on an allocated port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Listener {
    /// Nothing listens.
    #[default]
    Nobody,
    /// The owner (or a process it started) listens.
    Owner,
    /// Something listens and the owner is not known or could not be checked: taken for the
    /// service itself (a guess that never frees a port).
    Unverified,
    /// Processes other than the known owner listen.
    Squatters(Vec<Holder>),
}

/// The owning process as sysinfo saw it at the last pass.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessStats {
    pub name: String,
    pub cmdline: String,
    pub rss_bytes: u64,
    pub cpu_percent: f32,
}

/// One pass's view of one allocated port.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    pub at_ms: i64,
    pub listener: Listener,
    /// Sockets on the port (local end) by state, listeners excluded ("ESTABLISHED": 3).
    pub connections: BTreeMap<String, u64>,
    pub process: Option<ProcessStats>,
    /// Whether the owner was ever seen listening (so a silent port is "unhealthy", not
    /// "allocated").
    pub was_active: bool,
}

impl Observation {
    pub fn close_wait(&self) -> u64 {
        self.connections.get("CLOSE_WAIT").copied().unwrap_or(0)
    }
}

/// What applying one pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub observed: u64,
    /// Findings worth an operator's attention (squatters, listeners gone, leaks).
    pub issues: u64,
}

fn health_for(listener: &Listener, was_active: bool) -> (Health, String) {
    match listener {
        Listener::Squatters(h) => (
            Health::Unhealthy,
            format!(
                "port taken by {}",
                h.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Listener::Owner | Listener::Unverified => (Health::Active, "listening".into()),
        Listener::Nobody if was_active => (Health::Unhealthy, "listener gone".into()),
        Listener::Nobody => (Health::Allocated, "not listening".into()),
    }
}

impl Allocator {
    /// Applies one pass: `seen` maps (port, lease token) — so an observation of an allocation
    /// released meanwhile is dropped — to what the watchdog saw.
    pub fn apply_observations(
        &self,
        seen: Vec<((u16, String), Observation)>,
    ) -> Result<Applied, PortsError> {
        let mut st = self.lock();
        let now = self.host.now();
        let mut applied = Applied::default();
        for ((port, token), mut obs) in seen {
            let Some(a) = st
                .leases
                .get(&port)
                .filter(|a| a.lease_token == token)
                .cloned()
            else {
                continue;
            };
            applied.observed += 1;
            let before = a.observed.clone().unwrap_or_else(|| Observation {
                was_active: matches!(a.health, Health::Active | Health::Unhealthy),
                ..Default::default()
            });
            let (health, why) = health_for(&obs.listener, before.was_active);
            obs.was_active = before.was_active || health == Health::Active;
            let squatters_before = matches!(before.listener, Listener::Squatters(_));
            match (&obs.listener, squatters_before) {
                (Listener::Squatters(holders), false) => {
                    applied.issues += 1;
                    let message = format!(
                        "Port {port} ({}) is taken by {}",
                        a.service,
                        holders
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    tracing::warn!(port, service = %a.service, "[WATCHDOG] {message}");
                    let detail = EventDetail::SquatterSeen {
                        holders: holders.clone(),
                    };
                    self.commit_event(
                        &mut st,
                        now,
                        NewEvent::about(&a, message, detail),
                        |s, e| s.append(e),
                    )?;
                }
                (l, true) if !matches!(l, Listener::Squatters(_)) => {
                    let message = format!("Port {port} ({}) is no longer taken", a.service);
                    tracing::info!(port, service = %a.service, "[WATCHDOG] {message}");
                    let ev = NewEvent::about(&a, message, EventDetail::SquatterGone);
                    self.commit_event(&mut st, now, ev, |s, e| s.append(e))?;
                }
                _ => {}
            }
            let (close_wait, previous) = (obs.close_wait(), before.close_wait());
            if close_wait > previous && a.observed.is_some() {
                applied.issues += 1;
                let message = format!(
                    "Port {port} ({}): {close_wait} connections in CLOSE_WAIT (was {previous}); the service does not close connections its peers closed",
                    a.service
                );
                tracing::warn!(port, service = %a.service, "[WATCHDOG] {message}");
                let detail = EventDetail::ConnectionsLeaking {
                    close_wait,
                    previous,
                };
                self.commit_event(
                    &mut st,
                    now,
                    NewEvent::about(&a, message, detail),
                    |s, e| s.append(e),
                )?;
            }
            let mut current = a.clone();
            if health != a.health {
                applied.issues += u64::from(health == Health::Unhealthy);
                self.set_health_locked(&mut st, &a, health, &why, now)?;
                current.health = health;
            }
            current.observed = Some(obs);
            st.leases.insert(port, current);
        }
        Ok(applied)
    }
}
