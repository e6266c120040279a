//! Wiring: opens the state, builds the gRPC services (ports, network, watchdog, health,
//! reflection v1 + v1alpha), serves them on TCP and the Unix socket, runs the watchdog, and
//! shuts everything down in order.

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
use tonic_health::server::HealthReporter;

use crate::api::{NetworkApi, PortsApi, WatchdogApi};
use crate::config::{Config, MAX_MESSAGE_BYTES};
use crate::network::NetworkGate;
use crate::ports::{ephemeral_warnings, Allocator, AllocatorConfig, PortsError};
use crate::proto::network_service_server::NetworkServiceServer;
use crate::proto::ports_service_server::PortsServiceServer;
use crate::proto::watchdog_service_server::WatchdogServiceServer;
use crate::watchdog::{Watchdog, WatchdogConfig};

/// How long shutdown waits for in-flight calls and open streams before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// A running daemon. Dropping it does not stop it; call [`Daemon::shutdown`].
pub struct Daemon {
    pub tcp_addr: SocketAddr,
    pub unix_socket: Option<PathBuf>,
    stop: watch::Sender<bool>,
    health: HealthReporter,
    tasks: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
    watchdog_task: JoinHandle<()>,
    pub watchdog: Arc<Watchdog>,
    /// The Unix socket file is ours to remove (not when systemd passed the socket).
    owns_socket_file: bool,
    notifier: Arc<crate::systemd::Notifier>,
    announcer: JoinHandle<()>,
    portserver: Option<crate::api::Portserver>,
    /// Kept to close the state last, once nothing else holds it.
    allocator: Arc<Allocator>,
    /// This daemon's claim on its network namespace, freed last.
    netns_claim: Option<crate::netns::Claim>,
}

/// Opens the state (running the repair pass), binds the listeners and starts serving.
pub async fn start(cfg: Config) -> Result<Daemon, ServerError> {
    let daemon_info = Arc::new(crate::daemon_info::DaemonInfo::new(cfg.state.clone()));
    // Before the state is opened: a second daemon of this namespace must change nothing.
    let netns_claim = match &cfg.netns_lock {
        Some(name) => {
            let info = daemon_info.clone();
            Some(crate::netns::Claim::take(name, move || info.holder())?)
        }
        None => {
            // Off Linux there is no claim to make: the config allows only none there.
            if cfg!(target_os = "linux") {
                tracing::warn!("{}", crate::netns::UNCLAIMED_WARNING);
            }
            None
        }
    };
    for warning in ephemeral_warnings(&cfg.ranges)
        .into_iter()
        .chain(cfg.test_range.iter().flat_map(ephemeral_warnings))
    {
        tracing::warn!("{warning}");
    }
    let allocator_cfg = AllocatorConfig {
        ranges: cfg.ranges.clone(),
        test_pool: cfg.test_range.clone(),
        quarantine: cfg.quarantine,
        state_path: cfg.state.clone(),
        quotas: cfg.quotas,
        accept_state_loss: cfg.accept_state_loss,
    };
    let (allocator, _repair) = tokio::task::spawn_blocking(move || Allocator::open(allocator_cfg))
        .await
        .map_err(|e| ServerError::Listen {
            addr: "state".into(),
            source: std::io::Error::other(e),
        })??;
    // The watchdog's first pass, at once, takes the first network snapshot.
    let gate = Arc::new(NetworkGate::new(cfg.network.clone()));
    let allocator = Arc::new(
        allocator
            .with_gate(gate.clone())
            .with_watcher_limits(cfg.watchers),
    );
    // Whether the state can be written is part of every network report (state_storage).
    let weak = Arc::downgrade(&allocator);
    let (state_path, thresholds) = (cfg.state.clone(), cfg.network.thresholds.clone());
    gate.add_check(Box::new(move || {
        let problem = weak.upgrade().and_then(|a| a.storage_problem());
        crate::network::storage::state_storage(&state_path, problem.as_deref(), &thresholds)
    }));
    let watchdog = Arc::new(Watchdog::new(
        WatchdogConfig {
            interval: cfg.watchdog_interval,
            events_keep: cfg.events_keep,
            events_max_age: cfg.events_max_age,
        },
        allocator.clone(),
        gate.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    // Every service decodes at most MAX_MESSAGE_BYTES per request, health and reflection too.
    let health_service = health_service.max_decoding_message_size(MAX_MESSAGE_BYTES);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // The google.rpc error details, so grpcurl can decode an error's details.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    // Diagnostics get threads of their own, bounded per caller: never the blocking pool an
    // allocation may need.
    let diagnostics =
        crate::api::diagnostics::DiagnosticPool::start().map_err(|source| ServerError::Listen {
            addr: "diagnostics threads".into(),
            source,
        })?;
    let ports = PortsServiceServer::new(PortsApi::new(
        allocator.clone(),
        daemon_info.clone(),
        diagnostics.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let network = NetworkServiceServer::new(NetworkApi::new(gate.clone(), diagnostics.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let watchdog_service = WatchdogServiceServer::new(WatchdogApi::new(
        allocator.clone(),
        watchdog.clone(),
        diagnostics.clone(),
        gate.clone(),
        daemon_info.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut routes = Routes::new(health_service)
        .add_service(ports)
        .add_service(network)
        .add_service(watchdog_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    // REST (/api/ports/..., /metrics) beside the gRPC services, on the same listeners.
    let rest = crate::api::rest::RestState {
        metrics: Arc::new(crate::metrics::Metrics::new(
            allocator.clone(),
            gate.clone(),
            watchdog.clone(),
        )),
        allocator: allocator.clone(),
        gate: gate.clone(),
        watchdog: watchdog.clone(),
        daemon: daemon_info.clone(),
        diagnostics,
    };
    let router = crate::api::http_router(std::mem::take(routes.axum_router_mut()), rest);
    *routes.axum_router_mut() = router;
    health.set_serving::<PortsServiceServer<PortsApi>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;

    let (stop, stop_rx) = watch::channel(false);
    // Every listener is bound before any serves: a failure below drops `stop`, which ends
    // whatever was already started.
    let portserver = match &cfg.portserver_socket {
        Some(addr) => Some(
            crate::api::Portserver::start(addr, allocator.clone(), stop_rx.clone()).map_err(
                |source| ServerError::Portserver {
                    addr: addr.to_string(),
                    source,
                },
            )?,
        ),
        None => None,
    };
    tokio::spawn(storage_health(
        Arc::downgrade(&allocator),
        health.clone(),
        stop_rx.clone(),
    ));
    let mut tasks = Vec::new();

    let mut activated = crate::activation::Activated::from_env();
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
    let census = Arc::new(crate::listener::Census::default());
    let incoming = crate::listener::tcp(listener, cfg.limits, census.clone());
    tasks.push(tokio::spawn(
        tcp_server
            .add_routes(routes.clone())
            .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())),
    ));
    let scheme = if cfg.network.tls_cert.is_some() {
        if cfg.tls_client_ca.is_some() {
            " (TLS, client certificates required)"
        } else {
            " (TLS)"
        }
    } else {
        ""
    };
    tracing::info!(addr = %tcp_addr, "listening on tcp {tcp_addr}{scheme}");
    daemon_info.add_listener(tcp_addr.to_string());

    #[cfg(unix)]
    let activated_unix = activated.take_unix()?.map(|l| {
        let path = l
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            .unwrap_or_default();
        (l, path)
    });
    #[cfg(unix)]
    let owns_socket_file = activated_unix.is_none();
    for fd in activated.leftovers() {
        tracing::warn!("socket activation: {fd} is not used (one TCP and one Unix socket are)");
    }
    // No Unix socket off Unix (the config refuses one there).
    #[cfg(not(unix))]
    let (unix_socket, owns_socket_file) = (None::<PathBuf>, false);
    #[cfg(unix)]
    let unix_listener = match (activated_unix, &cfg.unix_socket) {
        (Some((listener, path)), _) => {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| UnixListener::from_std(listener))
                .map_err(|source| ServerError::Listen {
                    addr: format!("unix:{}", path.display()),
                    source,
                })?;
            Some((listener, path, " (passed by systemd)"))
        }
        (None, Some(path)) => Some((bind_unix(path)?, path.clone(), "")),
        (None, None) => None,
    };
    #[cfg(unix)]
    let unix_socket = unix_listener.map(|(listener, path, how)| {
        tasks.push(tokio::spawn(
            server_builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    crate::listener::unix(listener, cfg.limits, census.clone()),
                    stopped(stop_rx.clone()),
                ),
        ));
        tracing::info!(path = %path.display(), "listening on unix:{}{how}", path.display());
        path
    });

    if let Some(path) = &unix_socket {
        daemon_info.add_listener(format!("unix:{}", path.display()));
    }
    if let Some(addr) = &cfg.portserver_socket {
        daemon_info.add_listener(format!("portserver {addr}"));
    }

    let notifier = Arc::new(crate::systemd::Notifier::from_env());
    if notifier
        .watchdog_interval()
        .is_some_and(|every| every < crate::watchdog::REAP_INTERVAL)
    {
        tracing::warn!(
            "WatchdogSec is shorter than twice the {:?} reaper period: systemd may restart a healthy daemon",
            crate::watchdog::REAP_INTERVAL
        );
    }
    let announcer = crate::systemd::announce(
        notifier.clone(),
        watchdog.clone(),
        allocator.clone(),
        cfg.ranges.clone(),
        gate,
        stop_rx.clone(),
    );
    let watchdog_task = tokio::spawn(watchdog.clone().run(stop_rx));
    tracing::info!(ranges = %cfg.ranges, state = %cfg.state.display(), "portwarden is ready");
    Ok(Daemon {
        tcp_addr,
        unix_socket,
        stop,
        health,
        tasks,
        watchdog_task,
        watchdog,
        owns_socket_file,
        notifier,
        announcer,
        portserver,
        allocator,
        netns_claim,
    })
}

/// Concurrent HTTP/2 streams (requests, Watch streams) per connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Largest HTTP/2 header block a client may send.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

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

/// The ports service is NOT_SERVING while the state cannot be written (a full disk), and
/// SERVING again once it can: a load balancer or a probe then knows allocations would fail.
async fn storage_health(
    allocator: std::sync::Weak<Allocator>,
    health: HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    let mut serving = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(a) = allocator.upgrade() else { return };
        let ok = a.storage_problem().is_none();
        drop(a);
        if ok == serving {
            continue;
        }
        serving = ok;
        if ok {
            tracing::info!("the state can be written again: PortsService SERVING");
            health.set_serving::<PortsServiceServer<PortsApi>>().await;
        } else {
            tracing::warn!("the state cannot be written: PortsService NOT_SERVING until it can");
            health
                .set_not_serving::<PortsServiceServer<PortsApi>>()
                .await;
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
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

impl Daemon {
    /// Graceful stop: health goes NOT_SERVING, listeners close, in-flight calls finish (open
    /// streams get up to 5 s, then their connections are cut), then the state closes (the
    /// allocator is dropped with the last service).
    pub async fn shutdown(self) -> Result<(), ServerError> {
        tracing::info!("shutting down: health NOT_SERVING, finishing in-flight calls");
        self.notifier.stopping();
        self.health
            .set_not_serving::<PortsServiceServer<PortsApi>>()
            .await;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = self.stop.send(true);
        // Watch streams never end on their own: end them now, so their connections close.
        self.allocator.close_watches();
        let mut result = Ok(());
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut task in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => result = Err(ServerError::Serve(e)),
                Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
                Err(_) => {
                    // Streams that never end on their own (a health Watch) would hold the
                    // daemon open forever: after the grace period their connections are cut.
                    tracing::warn!(grace = ?SHUTDOWN_GRACE, "streams still open after the grace period; closing their connections");
                    task.abort();
                    let _ = task.await;
                }
            }
        }
        let _ = self.watchdog_task.await;
        drop(self.watchdog);
        if let Some(portserver) = self.portserver {
            portserver.stopped().await;
        }
        let _ = self.announcer.await;
        // A socket systemd passed stays: systemd owns its file and keeps listening on it.
        if let (Some(path), true) = (&self.unix_socket, self.owns_socket_file) {
            let _ = std::fs::remove_file(path);
        }
        // The services are gone with their servers; ours is then the last reference, and
        // dropping it closes SQLite (which checkpoints the WAL).
        match Arc::try_unwrap(self.allocator) {
            Ok(allocator) => {
                drop(allocator);
                tracing::info!("stopped; state closed");
            }
            Err(shared) => tracing::warn!(
                holders = Arc::strong_count(&shared) - 1,
                "stopped; the state is still referenced by closing connections and closes with them"
            ),
        }
        if let Some(claim) = self.netns_claim {
            claim.release().await;
        }
        result
    }
}
