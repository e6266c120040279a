//! The wire layer: gRPC services, proto <-> domain conversion and error mapping. The only place
//! where tonic and protobuf types meet the domain.

mod convert;
mod error;
mod fallback;
mod network;
mod ports;
mod portserver;
mod watchdog;

pub use error::status_from;
pub use fallback::unknown_path;
pub use network::NetworkApi;
pub use ports::PortsApi;
pub use portserver::{Portserver, MAX_CONNECTIONS, REQUEST_TIMEOUT};
pub use watchdog::WatchdogApi;
