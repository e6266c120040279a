//! Rust client for the portwarden daemon: the generated `portwarden.v1` stubs plus the address
//! discovery every portwarden client follows (`PORTWARDEN_ADDR`, then the Unix socket where the
//! platform has one, then `http://127.0.0.1:7070`), and [`bind_hardened`]: a listener with the socket hardening list applied.
//!
//! An `https://` address speaks TLS: the server is checked against `PORTWARDEN_CA` (else the
//! system's roots), and `PORTWARDEN_CLIENT_CERT` / `PORTWARDEN_CLIENT_KEY` answer a daemon that
//! requires client certificates (see [`TlsOptions`]).
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

#[cfg(unix)]
use hyper_util::rt::TokioIo;
#[cfg(unix)]
use tonic::transport::Uri;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

mod hardening;
#[cfg(unix)]
mod private_dir;
mod watch;

#[cfg(unix)]
pub use private_dir::{check_private_dir, check_socket, fallback_dir};

pub use hardening::{
    bind_hardened, bind_hardened_on, harden, harden_accepted, Hardening, SocketOption,
    ACCEPTED_TIMEOUT, BACKLOG, BUFFER_BYTES,
};
#[cfg(windows)]
pub use portwarden_sockopt::exclusive_address_use;
pub use watch::watch;

pub mod proto {
    //! Generated types and clients of the `portwarden.v1` contract (and, with the `server`
    //! feature, its servers: the daemon's are these same types).
    tonic::include_proto!("portwarden.v1");

    /// Encoded descriptor set of the contract, served by the daemon's reflection.
    #[cfg(feature = "server")]
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("portwarden_descriptor");
}

/// The TCP address the daemon listens on by default.
pub const DEFAULT_TCP_ADDR: &str = "http://127.0.0.1:7070";

/// The Unix socket of a daemon run by root (the system service).
pub const SYSTEM_SOCKET: &str = "/run/portwarden/portwarden.sock";

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
    #[error("cannot reach the portwarden daemon at {target}: {} (is `portwarden serve` running? set --addr or PORTWARDEN_ADDR)", error_chain(.source))]
    Unreachable {
        target: String,
        source: tonic::transport::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("refusing the Unix socket {path}: {reason}")]
    UnsafeSocket { path: String, reason: String },
}

/// The error and its sources on one line: tonic's own message is only "transport error".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Wrappers often repeat their source's message; say it once.
        if !out.ends_with(&text) {
            out += &format!(": {text}");
        }
        source = s.source();
    }
    out
}

/// TLS settings for an `https://` address. Files are PEM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA that signed the daemon's certificate (default: the system's trusted roots).
    pub ca: Option<PathBuf>,
    /// Client certificate, for a daemon that requires one (mutual TLS).
    pub cert: Option<PathBuf>,
    /// Key of the client certificate.
    pub key: Option<PathBuf>,
    /// Name to verify the daemon's certificate against, when it differs from the address's
    /// host (e.g. connecting to a node's IP with a certificate issued for a service name).
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// `PORTWARDEN_CA`, `PORTWARDEN_CLIENT_CERT`, `PORTWARDEN_CLIENT_KEY`,
    /// `PORTWARDEN_TLS_SERVER_NAME` (unset or empty: not given).
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Self {
            ca: var("PORTWARDEN_CA").map(PathBuf::from),
            cert: var("PORTWARDEN_CLIENT_CERT").map(PathBuf::from),
            key: var("PORTWARDEN_CLIENT_KEY").map(PathBuf::from),
            server_name: var("PORTWARDEN_TLS_SERVER_NAME").and_then(|v| v.into_string().ok()),
        }
    }

    fn client_config(&self) -> Result<ClientTlsConfig, ConnectError> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| {
                ConnectError::Tls(format!("cannot read the {what} {}: {e}", path.display()))
            })
        };
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read("CA certificate", ca)?)),
            None => config.with_native_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read("client certificate", cert)?,
                    read("client key", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(ConnectError::Tls(
                    "a client certificate needs its key: set both (PORTWARDEN_CLIENT_CERT and PORTWARDEN_CLIENT_KEY) or neither".into(),
                ))
            }
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        Ok(config)
    }
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
        #[cfg(unix)]
        {
            let sock = default_socket_path();
            if sock.exists() {
                return Target::Unix(sock);
            }
        }
        Target::Tcp(DEFAULT_TCP_ADDR.to_string())
    }

    /// Where to look for the daemon, in order: the explicit address or `PORTWARDEN_ADDR` alone
    /// when given; else this user's default Unix socket, the system daemon's socket (for a user
    /// other than root: over a Unix socket the daemon knows who is calling), then
    /// `http://127.0.0.1:7070`. Sockets are listed whether or not their file exists.
    pub fn candidates(explicit: Option<&str>) -> Vec<Self> {
        if let Some(a) = explicit.filter(|a| !a.is_empty()) {
            return vec![Self::parse(a)];
        }
        if let Ok(a) = std::env::var("PORTWARDEN_ADDR") {
            if !a.is_empty() {
                return vec![Self::parse(&a)];
            }
        }
        let mut out = Vec::new();
        #[cfg(unix)]
        {
            out.push(Target::Unix(default_socket_path()));
            let system = PathBuf::from(SYSTEM_SOCKET);
            if !out.contains(&Target::Unix(system.clone())) {
                out.push(Target::Unix(system));
            }
        }
        out.push(Target::Tcp(DEFAULT_TCP_ADDR.to_string()));
        out
    }
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The daemon's default Unix socket: `/run/portwarden/portwarden.sock` as root, else
/// `$XDG_RUNTIME_DIR/portwarden.sock`, else `/tmp/portwarden-$UID/portwarden.sock`.
#[cfg(unix)]
pub fn default_socket_path() -> PathBuf {
    if euid() == 0 {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(&dir).join("portwarden.sock"),
        None => fallback_dir(euid()).join("portwarden.sock"),
    }
}

/// Connects to the daemon, with TLS settings from the environment ([`TlsOptions::from_env`])
/// for an `https://` address.
pub async fn connect(target: &Target) -> Result<Channel, ConnectError> {
    connect_with(target, &TlsOptions::from_env()).await
}

/// Connects to the daemon. Over the Unix socket the HTTP/2 `:authority` is `localhost`: the
/// server's h2 layer rejects a socket path there (hyperium/h2#487). `tls` applies to an
/// `https://` address only.
pub async fn connect_with(target: &Target, tls: &TlsOptions) -> Result<Channel, ConnectError> {
    let unreachable = |source| ConnectError::Unreachable {
        target: target.to_string(),
        source,
    };
    match target {
        Target::Tcp(addr) => {
            let mut endpoint =
                Endpoint::from_shared(addr.clone()).map_err(|e| ConnectError::BadAddress {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            if endpoint.uri().scheme_str() == Some("https") {
                endpoint = endpoint
                    .tls_config(tls.client_config()?)
                    .map_err(|e| ConnectError::Tls(error_chain(&e)))?;
            }
            endpoint
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(unreachable)
        }
        #[cfg(not(unix))]
        Target::Unix(path) => Err(ConnectError::BadAddress {
            addr: format!("unix:{}", path.display()),
            reason: "Unix sockets are not available on this platform: use http://host:port".into(),
        }),
        #[cfg(unix)]
        Target::Unix(path) => {
            check_socket(path, euid()).map_err(|reason| ConnectError::UnsafeSocket {
                path: path.display().to_string(),
                reason,
            })?;
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
