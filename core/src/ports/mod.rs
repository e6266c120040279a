//! The port manager domain: managed ranges, allocations and their owners, the free check, durable
//! state and the allocator that ties them together. Nothing here knows about gRPC or HTTP.

mod alloc_log;
mod allocator;
mod availability;
mod check;
mod claim;
mod clock;
mod counters;
mod error;
mod event_index;
mod events_store;
mod exhausted;
mod fields;
mod holders;
mod host;
mod lease;
mod marker;
mod names;
mod observe;
mod pool;
mod process;
mod project_claim;
mod projects;
mod quota;
mod range;
mod reuse;
mod schema;
mod storage;
mod store;
mod validate;
mod watch;

pub use alloc_log::{describe_caller, describe_owner};
pub use allocator::{
    Allocator, AllocatorConfig, Granted, RangeStatus, Reclaimed, Released, RepairReport,
};
pub use check::MAX_CHECK_PORTS;
pub use check::{PortVerdict, PortVerdictState};
pub use claim::{check_claim, claimed_process};
pub use clock::{rfc3339, Clock, Deadline, Now, SystemClock};
pub use counters::Totals;
pub use error::{FieldViolation, PortsError, Resting};
pub use events_store::LogBounds;
pub use fields::{
    event_filter, port_list, port_number, service_chars, service_filter, valid_project,
    valid_service, MAX_PROJECT_BYTES, MAX_SERVICE_LEN, MAX_TEXT_BYTES,
};
pub use host::{Host, RealHost};
pub use lease::{
    daemon_uid, is_operator, Allocation, Caller, Health, OwnerKind, ReclaimReason, Vitality,
};
pub use observe::{Applied, Listener, Observation, ProcessStats};
pub use pool::{Pool, Pools};
pub use process::{
    boot_id, command_line, identify_owner, identify_owner_detailed, identify_peer, DeathCause,
    Liveness, OwnerError, ProcessDetails, ProcessIdentity,
};
pub use projects::{
    service_name as project_service_name, Forgotten, ProjectKey, ProjectPort, ProjectPortState,
    ProjectRecord,
};
pub use quota::{Quotas, Share};
pub use range::{ephemeral_warnings, PortRange, RangeSet};
pub use store::StoreError;
pub use validate::{AllocateRequest, RenewRequest};
pub use watch::{Feed, FeedItem, WatchStart, MAX_HISTORY_PAGE};
