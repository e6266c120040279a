//! The event log's domain side: what an event is ([`Event`]), how watchers get them live
//! ([`EventBus`]), and who may hold how many of them ([`WatcherLimits`]). Allocation changes are written to the state database in the same transaction
//! as their event (see `ports::Allocator`), so an event exists exactly when its change does.
//! Nothing here knows about gRPC or HTTP.

mod bus;
mod event;
mod watchers;

pub use bus::{EventBus, Next, OnStuck, Subscription, LAG_TIMEOUT, STUCK_GRACE, WATCH_BUFFER};
pub use event::{
    AllocationView, CheckMove, Event, EventDetail, EventFilter, EventKind, Holder, NewEvent,
};
pub use watchers::{SubscribeError, WatcherLimits};
