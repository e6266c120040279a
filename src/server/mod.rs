//! Wiring, in stages: claim the network namespace, open the state with the gate and the
//! watchdog (`domain.rs`), build the services (`services.rs`), bind and serve the listeners
//! (`listeners.rs`), then the portserver endpoint, systemd and the watchdog; and shut everything
//! down in order.

mod domain;
mod error;
mod listeners;
mod services;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

pub use error::ServerError;

use crate::config::Config;
use crate::ports::Allocator;
use crate::watchdog::Watchdog;

/// How long shutdown waits for in-flight calls and open streams before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    let netns_claim = domain::claim_namespace(&cfg, &daemon_info)?;
    let core = domain::open(&cfg).await?;
    // One registry for every transport: gRPC and REST count in it, and so does the portserver.
    let metrics = Arc::new(crate::metrics::Metrics::new(
        core.allocator.clone(),
        core.gate.clone(),
        core.watchdog.clone(),
    ));
    let (routes, health) = services::routes(&core, &daemon_info, metrics.clone()).await?;

    let (stop, stop_rx) = watch::channel(false);
    // Every listener is bound before any serves: a failure below drops `stop`, which ends
    // whatever was already started.
    let portserver = match &cfg.portserver_socket {
        Some(addr) => Some(
            crate::api::Portserver::start(addr, core.allocator.clone(), metrics, stop_rx.clone())
                .map_err(|source| ServerError::Portserver {
                addr: addr.to_string(),
                source,
            })?,
        ),
        None => None,
    };
    tokio::spawn(services::storage_health(
        Arc::downgrade(&core.allocator),
        health.clone(),
        stop_rx.clone(),
    ));
    let mut activated = crate::activation::Activated::from_env();
    let census = Arc::new(crate::listener::Census::default());
    let (tcp_addr, tcp_task) = listeners::serve_tcp(
        &cfg,
        &mut activated,
        routes.clone(),
        census.clone(),
        stop_rx.clone(),
    )
    .await?;
    daemon_info.add_listener(tcp_addr.to_string());
    let unix = listeners::serve_unix(&cfg, &mut activated, routes, census, stop_rx.clone())?;
    for fd in activated.leftovers() {
        tracing::warn!("socket activation: {fd} is not used (one TCP and one Unix socket are)");
    }
    let mut tasks = vec![tcp_task];
    let (unix_socket, owns_socket_file) = match unix {
        Some(u) => {
            daemon_info.add_listener(format!("unix:{}", u.path.display()));
            tasks.push(u.task);
            (Some(u.path), u.owns_file)
        }
        None => (None, false),
    };
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
    let domain::Core {
        allocator,
        gate,
        watchdog,
    } = core;
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

impl Daemon {
    /// Graceful stop: health goes NOT_SERVING, listeners close, in-flight calls finish (open
    /// streams get up to 5 s, then their connections are cut), then the state closes (the
    /// allocator is dropped with the last service).
    pub async fn shutdown(self) -> Result<(), ServerError> {
        tracing::info!("shutting down: health NOT_SERVING, finishing in-flight calls");
        self.notifier.stopping();
        services::not_serving(&self.health).await;
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
