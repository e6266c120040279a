//! The listeners: TCP (TLS when configured; plaintext only on loopback unless allowed) and
//! the Unix socket, each taken from systemd when it passed one, each admitting connections
//! under the limits of `crate::listener`.

use std::net::SocketAddr;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::Server;

use super::ServerError;
use crate::activation::Activated;
use crate::config::Config;
use crate::listener::Census;

/// Concurrent HTTP/2 streams (requests, Watch streams) per connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Largest HTTP/2 header block a client may send.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

pub(super) type ServeTask = JoinHandle<Result<(), tonic::transport::Error>>;

fn server_builder() -> Server {
    Server::builder()
        .accept_http1(true)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .http2_max_header_list_size(Some(MAX_HEADER_LIST_BYTES))
        .http2_max_pending_accept_reset_streams(Some(32))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Binds (or takes from systemd) the TCP listener and serves `routes` on it.
pub(super) async fn serve_tcp(
    cfg: &Config,
    activated: &mut Activated,
    routes: Routes,
    census: Arc<Census>,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, ServeTask), ServerError> {
    let listener = match activated.take_tcp()? {
        Some(l) => l
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(l)),
        None => TcpListener::bind(cfg.listen).await,
    }
    .map_err(|source| ServerError::Listen {
        addr: cfg.listen.to_string(),
        source,
    })?;
    let tcp_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    let tls = match (&cfg.network.tls_cert, &cfg.network.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(
            cert,
            key,
            cfg.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    // Checked again on the real address: a socket systemd passed may differ from `listen`.
    crate::tls::check_exposure(tcp_addr, tls.is_some(), cfg.insecure_listen)
        .map_err(ServerError::Exposed)?;
    if tls.is_none() && !crate::network::is_loopback(tcp_addr.ip()) {
        tracing::warn!(addr = %tcp_addr, "serving plaintext gRPC to the network (--insecure-listen)");
    }
    let mut tcp_server = server_builder();
    if let Some(tls) = tls {
        tcp_server = tcp_server
            .tls_config(tls)
            .map_err(|e| crate::tls::TlsError::Unusable(portwarden_client::error_chain(&e)))?;
    }
    // Connections are admitted under limits, and each caller identified once (see listener.rs).
    let incoming = crate::listener::tcp(listener, cfg.limits, census);
    let task = tokio::spawn(
        tcp_server
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stopped(stop)),
    );
    let scheme = match (&cfg.network.tls_cert, &cfg.tls_client_ca) {
        (Some(_), Some(_)) => " (TLS, client certificates required)",
        (Some(_), None) => " (TLS)",
        (None, _) => "",
    };
    tracing::info!(addr = %tcp_addr, "listening on tcp {tcp_addr}{scheme}");
    Ok((tcp_addr, task))
}

/// The Unix socket being served: its path, whether its file is ours to remove (not when
/// systemd passed the socket), and its server.
pub(super) struct UnixServing {
    pub path: PathBuf,
    pub owns_file: bool,
    pub task: ServeTask,
}

/// Binds (or takes from systemd) the Unix socket, when there is one, and serves `routes` on it.
#[cfg(unix)]
pub(super) fn serve_unix(
    cfg: &Config,
    activated: &mut Activated,
    routes: Routes,
    census: Arc<Census>,
    stop: watch::Receiver<bool>,
) -> Result<Option<UnixServing>, ServerError> {
    let passed = activated.take_unix()?.map(|l| {
        let path = l
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            .unwrap_or_default();
        (l, path)
    });
    let owns_file = passed.is_none();
    let (listener, path, how) = match (passed, &cfg.unix_socket) {
        (Some((listener, path)), _) => {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| UnixListener::from_std(listener))
                .map_err(|source| ServerError::Listen {
                    addr: format!("unix:{}", path.display()),
                    source,
                })?;
            (listener, path, " (passed by systemd)")
        }
        (None, Some(path)) => (bind_unix(path)?, path.clone(), ""),
        (None, None) => return Ok(None),
    };
    let task = tokio::spawn(
        server_builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                crate::listener::unix(listener, cfg.limits, census),
                stopped(stop),
            ),
    );
    tracing::info!(path = %path.display(), "listening on unix:{}{how}", path.display());
    Ok(Some(UnixServing {
        path,
        owns_file,
        task,
    }))
}

/// No Unix socket off Unix (the config refuses one there).
#[cfg(not(unix))]
pub(super) fn serve_unix(
    _: &Config,
    _: &mut Activated,
    _: Routes,
    _: Arc<Census>,
    _: watch::Receiver<bool>,
) -> Result<Option<UnixServing>, ServerError> {
    Ok(None)
}

/// Binds the Unix socket, replacing a stale file but never a live daemon's socket. The socket is
/// bound and listening under a temporary name first, then renamed into place, so a client that
/// sees the path can connect (bind and listen are two syscalls; the gap refused connections).
#[cfg(unix)]
fn bind_unix(path: &Path) -> Result<UnixListener, ServerError> {
    let listen_err = |source| ServerError::Listen {
        addr: format!("unix:{}", path.display()),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
    }
    // The per-user fallback under /tmp must really be this user's own (see private_dir.rs in
    // the client crate): a directory another user made first is refused, not used.
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if path.parent() == Some(portwarden_client::fallback_dir(euid).as_path()) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = portwarden_client::fallback_dir(euid);
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == euid) {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        portwarden_client::check_socket(path, euid).map_err(|reason| ServerError::Listen {
            addr: format!("unix:{}", path.display()),
            source: std::io::Error::other(reason),
        })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::SocketBusy(path.into()));
        }
        std::fs::remove_file(path).map_err(listen_err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(listen_err)?;
    // Any local user may connect, as to the loopback TCP port: what a caller may do is decided
    // per call from its credentials (SO_PEERCRED) and lease tokens, not by the file mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).map_err(listen_err)?;
    std::fs::rename(&tmp, path).map_err(listen_err)?;
    listener.set_nonblocking(true).map_err(listen_err)?;
    UnixListener::from_std(listener).map_err(listen_err)
}
