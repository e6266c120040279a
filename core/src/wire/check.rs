//! The port check object: whether a port could be allocated now, and if not why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ports::{PortVerdict, PortVerdictState};

/// The free check's verdict on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
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

impl From<PortVerdictState> for PortState {
    fn from(s: PortVerdictState) -> Self {
        match s {
            PortVerdictState::Free => Self::Free,
            PortVerdictState::Allocated => Self::Allocated,
            PortVerdictState::Quarantined => Self::Quarantined,
            PortVerdictState::InUse => Self::InUse,
            PortVerdictState::Blocked => Self::Blocked,
            PortVerdictState::OutsideRange => Self::OutsideRange,
            PortVerdictState::Unknown => Self::Unknown,
        }
    }
}

/// One port, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PortCheck {
    pub port: u16,
    pub state: PortState,
    /// Who holds it: "service web (pid 4242)", or the process outside portwarden when the
    /// caller may know; null when nobody does or the caller may not know.
    pub holder: Option<String>,
    /// Why, in words.
    pub reason: String,
    pub in_managed_range: bool,
}

impl From<&PortVerdict> for PortCheck {
    fn from(v: &PortVerdict) -> Self {
        Self {
            port: v.port,
            state: v.state.into(),
            holder: v.holder.clone(),
            reason: v.reason.clone(),
            in_managed_range: v.in_managed_range,
        }
    }
}
