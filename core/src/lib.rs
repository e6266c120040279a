//! portwarden's core: the port manager (ranges, allocations, owners, the free check, durable
//! state, the allocator), the network diagnostics, the event log and its watchers, the
//! watchdog, and the JSON vocabulary every transport speaks. No transport lives here: this
//! crate's dependency tree holds no tonic, axum, hyper or prost (CI checks it), and the daemon
//! (the `portwarden` crate) puts gRPC, REST, the portserver protocol and the CLI on top.

pub mod events;
pub mod network;
pub mod ports;
pub mod text;
pub mod throttle;
pub mod watchdog;
pub mod wire;
