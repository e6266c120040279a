//! Rust client for the portwarden daemon: the generated `portwarden.v1` stubs plus the address
//! discovery every portwarden client follows (`PORTWARDEN_ADDR`, then the Unix socket, then
//! `http://127.0.0.1:7070`), and [`bind_hardened`]: a listener with the seed's socket hardening.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use portwarden_client::{connect, proto::ports_service_client::PortsServiceClient, Target};
//! let channel = connect(&Target::discover(None)).await?;
//! let mut ports = PortsServiceClient::new(channel);
//! let reply = ports
//!     .allocate(portwarden_client::proto::AllocateRequest { service: "web".into(), ..Default::default() })
//!     .await?;
//! println!("got port {}", reply.into_inner().allocation.unwrap_or_default().port);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

mod hardening;
mod watch;

pub use hardening::{
    bind_hardened, bind_hardened_on, harden, harden_accepted, Hardening, SocketOption,
    ACCEPTED_TIMEOUT, BACKLOG, BUFFER_BYTES,
};
pub use watch::watch;

pub mod proto {
    //! Generated types and clients of the `portwarden.v1` contract.
    tonic::include_proto!("portwarden.v1");
}

/// The TCP address the daemon listens on by default.
pub const DEFAULT_TCP_ADDR: &str = "http://127.0.0.1:7070";

/// Where a daemon can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `http://host:port`
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad daemon address '{addr}': {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("cannot reach the portwarden daemon at {target}: {source} (is `portwarden serve` running? set --addr or PORTWARDEN_ADDR)")]
    Unreachable {
        target: String,
        source: tonic::transport::Error,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => f.write_str(a),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Target {
    /// Parses `http://host:port`, `host:port` or `unix:/path`.
    pub fn parse(addr: &str) -> Self {
        match addr.strip_prefix("unix:") {
            Some(path) => Target::Unix(PathBuf::from(path.trim_start_matches("//"))),
            None if addr.contains("://") => Target::Tcp(addr.to_string()),
            None => Target::Tcp(format!("http://{addr}")),
        }
    }

    /// The explicit address, else `PORTWARDEN_ADDR`, else the default Unix socket when it
    /// exists, else `http://127.0.0.1:7070`.
    pub fn discover(explicit: Option<&str>) -> Self {
        if let Some(a) = explicit.filter(|a| !a.is_empty()) {
            return Self::parse(a);
        }
        if let Ok(a) = std::env::var("PORTWARDEN_ADDR") {
            if !a.is_empty() {
                return Self::parse(&a);
            }
        }
        let sock = default_socket_path();
        if sock.exists() {
            return Target::Unix(sock);
        }
        Target::Tcp(DEFAULT_TCP_ADDR.to_string())
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The daemon's default Unix socket: `/run/portwarden/portwarden.sock` as root, else
/// `$XDG_RUNTIME_DIR/portwarden.sock`, else `/tmp/portwarden-$UID/portwarden.sock`.
pub fn default_socket_path() -> PathBuf {
    if euid() == 0 {
        return PathBuf::from("/run/portwarden/portwarden.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(&dir).join("portwarden.sock"),
        None => PathBuf::from(format!("/tmp/portwarden-{}/portwarden.sock", euid())),
    }
}

/// Connects to the daemon. Over the Unix socket the HTTP/2 `:authority` is `localhost`: the
/// server's h2 layer rejects a socket path there (hyperium/h2#487).
pub async fn connect(target: &Target) -> Result<Channel, ConnectError> {
    let unreachable = |source| ConnectError::Unreachable {
        target: target.to_string(),
        source,
    };
    match target {
        Target::Tcp(addr) => {
            let endpoint =
                Endpoint::from_shared(addr.clone()).map_err(|e| ConnectError::BadAddress {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            endpoint
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(unreachable)
        }
        Target::Unix(path) => {
            let path = path.clone();
            Endpoint::from_static("http://localhost")
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(unreachable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_address_form() {
        assert_eq!(
            Target::parse("unix:/run/x.sock"),
            Target::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Target::parse("127.0.0.1:7070"),
            Target::Tcp("http://127.0.0.1:7070".into())
        );
        assert_eq!(
            Target::parse("http://[::1]:1"),
            Target::Tcp("http://[::1]:1".into())
        );
        assert_eq!(
            Target::parse("https://h:1"),
            Target::Tcp("https://h:1".into())
        );
    }
}
