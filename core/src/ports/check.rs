//! CheckPorts: the free check for any ports, in or out of the managed ranges, without
//! allocating. Bounded: at most [`MAX_CHECK_PORTS`] ports a call, each probed once, one walk of
//! the socket table (and of /proc) for all the ports in use, and listeners named only to callers
//! allowed to see them (root, and the socket's own user).

use super::allocator::Allocator;
use super::holders::holders;
use super::lease::Caller;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::network::PortFinding;

// Also the wire's `PortState`: it serialises as REST and `--json` spell it.
/// The free check's verdict on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PortState)]
pub enum PortVerdictState {
    Free,
    Allocated,
    /// Resting after release.
    Quarantined,
    /// Something outside portwarden listens on it.
    InUse,
    /// The host refuses to bind it (a firewall or privilege rule).
    Blocked,
    /// Free, but not a managed port.
    OutsideRange,
    /// The daemon could not probe it now (out of descriptors or memory).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortVerdict {
    pub port: u16,
    pub state: PortVerdictState,
    pub reason: String,
    pub in_managed_range: bool,
    /// Who has it: "service web (pid 12)", or the listening process(es) outside portwarden.
    pub holder: Option<String>,
}

/// Most ports one CheckPorts call may ask about.
pub const MAX_CHECK_PORTS: usize = 1024;

impl Allocator {
    /// The free check for each of `ports` (at most [`MAX_CHECK_PORTS`]; the API refuses more),
    /// as `caller` may learn it.
    pub fn check_ports(&self, ports: &[u16], caller: &Caller) -> Vec<PortVerdict> {
        let now = self.now();
        let mut out: Vec<PortVerdict> = Vec::with_capacity(ports.len());
        let mut to_probe = Vec::new();
        {
            let st = self.lock();
            for &port in ports.iter().take(MAX_CHECK_PORTS) {
                let in_managed_range = self.ranges().contains(port);
                let known = match st.leases.get(&port) {
                    Some(a) => Some((
                        PortVerdictState::Allocated,
                        format!("held by service '{}'", a.service),
                        Some(match a.pid() {
                            Some(pid) => format!("service {} (pid {pid})", a.service),
                            None => format!("service {}", a.service),
                        }),
                    )),
                    None => st.quarantined(port, now).map(|(service, left_ms)| {
                        (
                            PortVerdictState::Quarantined,
                            format!("released by '{service}', quarantined for {left_ms} ms more"),
                            None,
                        )
                    }),
                };
                match known {
                    Some((state, reason, holder)) => out.push(PortVerdict {
                        port,
                        state,
                        reason,
                        in_managed_range,
                        holder,
                    }),
                    None => {
                        // Filled in once probed.
                        to_probe.push((out.len(), port, in_managed_range));
                        out.push(PortVerdict {
                            port,
                            state: PortVerdictState::Unknown,
                            reason: String::new(),
                            in_managed_range,
                            holder: None,
                        });
                    }
                }
            }
        }
        // Probed outside the lock: a thousand binds must not stall allocations.
        let found: Vec<(usize, u16, bool, PortFinding)> = to_probe
            .into_iter()
            .map(|(at, port, in_range)| (at, port, in_range, self.host.probe(port)))
            .collect();
        {
            let mut st = self.lock();
            for (_, port, in_range, finding) in &found {
                if *in_range {
                    st.availability.note_probe(*port, finding);
                }
            }
        }
        let in_use: Vec<u16> = found
            .iter()
            .filter(|(.., f)| matches!(f, PortFinding::InUse(_)))
            .map(|(_, port, ..)| *port)
            .collect();
        let mut named = if in_use.is_empty() {
            Default::default()
        } else {
            holders(&in_use, caller.uid)
        };
        for (at, port, in_managed_range, finding) in found {
            let (state, reason, holder) = match finding {
                PortFinding::Bindable if in_managed_range => {
                    (PortVerdictState::Free, "free".into(), None)
                }
                PortFinding::Bindable => (
                    PortVerdictState::OutsideRange,
                    "bindable, but outside the managed ranges".into(),
                    None,
                ),
                PortFinding::InUse(detail) => {
                    let holder = named.remove(&port);
                    let reason = match &holder {
                        Some(holder) => format!("{detail}; held by {holder}"),
                        None => detail,
                    };
                    (PortVerdictState::InUse, reason, holder)
                }
                PortFinding::Blocked(detail) | PortFinding::Unusable(detail) => {
                    (PortVerdictState::Blocked, detail, None)
                }
                PortFinding::Unknown(detail) => (PortVerdictState::Unknown, detail, None),
            };
            out[at] = PortVerdict {
                port,
                state,
                reason,
                in_managed_range,
                holder,
            };
        }
        out
    }
}
