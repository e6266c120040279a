//! The port check object: whether a port could be allocated now, and if not why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ports::PortVerdict;
/// The free check's verdict on one port: the domain's own type, which serialises as the wire has it.
pub use crate::ports::PortVerdictState as PortState;

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
            state: v.state,
            holder: v.holder.clone(),
            reason: v.reason.clone(),
            in_managed_range: v.in_managed_range,
        }
    }
}
