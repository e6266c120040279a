//! The port manager domain: managed ranges, allocations and their owners, the free check, durable
//! state and the allocator that ties them together. Nothing here knows about gRPC or HTTP.

mod allocator;
mod claim;
mod error;
mod lease;
mod process;
mod range;
mod store;
mod validate;

pub use allocator::{
    Allocator, AllocatorConfig, Granted, RangeStatus, Reclaimed, Released, RepairReport,
};
pub use claim::{check_claim, claimed_process};
pub use error::{FieldViolation, PortsError};
pub use lease::{Allocation, Caller, Health, OwnerKind};
pub use process::{
    command_line, process_info, process_start_time, process_stat, ProcessInfo, ProcessLookup,
    ProcessStat,
};
pub use range::{ephemeral_warnings, PortRange, RangeSet};
pub use store::StoreError;
pub use validate::{
    valid_service, AllocateRequest, PortVerdict, PortVerdictState, RenewRequest, MAX_SERVICE_LEN,
    MAX_TEXT_BYTES,
};
