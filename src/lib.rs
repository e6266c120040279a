//! portwarden: a control-plane daemon that owns a range of TCP ports, hands them out safely,
//! checks the host's network before it does, and watches every allocation.

pub use portwarden_core::{events, network, ports, text, watchdog, wire};

pub mod activation;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon_info;
pub mod listener;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod netns;
pub mod server;
pub mod signals;
pub mod systemd;
pub mod tls;
/// The `portwarden.v1` contract: generated once, in portwarden-client (with its servers).
pub use portwarden_client::proto;
