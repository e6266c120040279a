//! The port manager domain: managed ranges, allocations and their owners, the free check, durable
//! state and the allocator that ties them together. Nothing here knows about gRPC or HTTP.

mod alloc_log;
mod allocator;
mod availability;
mod clock;
mod counters;
mod error;
mod events_store;
mod exhausted;
mod lease;
mod observe;
mod process;
mod range;
mod reuse;
mod store;
mod validate;
mod watch;

pub use alloc_log::{describe_caller, describe_owner};
pub use allocator::{
    Allocator, AllocatorConfig, Granted, RangeStatus, Reclaimed, Released, RepairReport,
};
pub use clock::{Clock, Deadline, Now, SystemClock};
pub use counters::Totals;
pub use error::{FieldViolation, PortsError};
pub use events_store::LogBounds;
pub use lease::{Allocation, Caller, Health, OwnerKind, ReclaimReason, Vitality};
pub use observe::{Applied, Listener, Observation, ProcessStats};
pub use process::{boot_id, identify_owner, process_start_time, OwnerError, ProcessIdentity};
pub use range::{ephemeral_warnings, PortRange, RangeSet};
pub use store::StoreError;
pub use validate::{
    event_filter, valid_service, AllocateRequest, PortVerdict, PortVerdictState, RenewRequest,
};
pub use watch::{Feed, FeedItem, WatchStart, MAX_HISTORY_PAGE};
