//! Start-up's first stages: claim the network namespace, then open the state (running the
//! repair pass) with the network gate and the watchdog around it.

use std::sync::Arc;

use super::ServerError;
use crate::config::Config;
use crate::daemon_info::DaemonInfo;
use crate::network::NetworkGate;
use crate::ports::{ephemeral_warnings, Allocator, AllocatorConfig};
use crate::watchdog::{Watchdog, WatchdogConfig};

/// Before the state is opened: a second daemon of this namespace must change nothing.
pub(super) fn claim_namespace(
    cfg: &Config,
    daemon_info: &Arc<DaemonInfo>,
) -> Result<Option<crate::netns::Claim>, ServerError> {
    match &cfg.netns_lock {
        Some(name) => {
            let info = daemon_info.clone();
            Ok(Some(crate::netns::Claim::take(name, move || {
                info.holder()
            })?))
        }
        None => {
            // Off Linux there is no claim to make: the config allows only none there.
            if cfg!(target_os = "linux") {
                tracing::warn!("{}", crate::netns::UNCLAIMED_WARNING);
            }
            Ok(None)
        }
    }
}

/// The domain as the transports see it.
pub(super) struct Core {
    pub allocator: Arc<Allocator>,
    pub gate: Arc<NetworkGate>,
    pub watchdog: Arc<Watchdog>,
}

/// Opens the state (the repair pass runs), with the pre-allocation gate and the watchdog.
pub(super) async fn open(cfg: &Config) -> Result<Core, ServerError> {
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
    Ok(Core {
        allocator,
        gate,
        watchdog,
    })
}
