//! The one JSON vocabulary users and scripts read: one object per concept (an allocation, an
//! event, a port check), serialised by one `Serialize` impl for REST bodies, SSE `data:`, the
//! CLI's `--json` and `watch --json`. Rules: snake_case keys; times RFC 3339 UTC with exactly
//! three fractional digits; every key always present (null when unknown); durations integers
//! with the unit in the key. The daemon fills these from the domain (`from` impls here); the CLI
//! fills them from the protobuf it receives (`portwarden::cli::decode`, in the daemon crate),
//! and a test holds the two equal key by key.

mod allocation;
mod check;
mod event;
mod replies;
mod report;
mod time;

pub use allocation::{Allocation, Observed, ProcessStats};
pub use check::{PortCheck, PortState};
pub use event::{Event, Reset, SnapshotComplete, SnapshotEntry};
pub use replies::{Allocated, Released};
pub use report::{
    CheckDoc, ConnectionsDoc, ExhaustionDoc, IoCountersDoc, IoTotalsDoc, ReportDoc, StatsDoc,
};
pub use time::timestamp;
