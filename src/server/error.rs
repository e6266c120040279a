//! Why the daemon could not start or serve.

use std::path::PathBuf;

use crate::ports::PortsError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("another daemon is already serving the Unix socket {0}")]
    SocketBusy(PathBuf),
    #[error("cannot serve the portserver protocol on {addr}: {source}; choose another address with --portserver-socket (PORTWARDEN_PORTSERVER_SOCKET, portserver_socket), or none")]
    Portserver {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Ports(#[from] PortsError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("config key 'listen': {0}")]
    Exposed(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Activation(#[from] crate::activation::ActivationError),
    #[error(transparent)]
    Namespace(#[from] crate::netns::ClaimError),
}

impl ServerError {
    /// A mistake in the configuration (exit code 2, like the config's own errors).
    pub fn is_config(&self) -> bool {
        use crate::ports::StoreError;
        // A second daemon in the namespace is not retried either: it would be refused again.
        matches!(
            self,
            Self::Exposed(_)
                | Self::Portserver { .. }
                | Self::Tls(_)
                | Self::Activation(_)
                | Self::Namespace(_)
                | Self::Ports(PortsError::Store(
                    StoreError::Lost(_) | StoreError::Damaged(_)
                ))
        )
    }
}
