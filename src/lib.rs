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
pub mod proto {
    //! The generated protobuf types and gRPC servers of the `portwarden.v1` contract.
    tonic::include_proto!("portwarden.v1");

    /// Encoded descriptor set of the contract, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("portwarden_descriptor");
}
