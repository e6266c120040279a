//! The signals that stop the daemon, watched from before start-up: a SIGTERM that arrives while
//! the daemon starts (systemd stopping a unit that has just started) is then a clean stop, not
//! the default action's sudden death.

/// Installed handlers; `wait` resolves on the first stop signal.
pub struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    events: Result<WindowsEvents, Option<tokio::signal::windows::CtrlC>>,
}

#[cfg(windows)]
struct WindowsEvents {
    ctrl_c: tokio::signal::windows::CtrlC,
    brk: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
    shutdown: tokio::signal::windows::CtrlShutdown,
}

impl StopSignals {
    /// Installs the handlers now (inside the runtime). One that cannot be installed is logged.
    #[cfg(unix)]
    pub fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let watch = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot watch {name}");
                None
            }
        };
        Self {
            term: watch(SignalKind::terminate(), "SIGTERM"),
            int: watch(SignalKind::interrupt(), "SIGINT"),
            // SIGHUP (a closed terminal, `systemctl reload`) must not kill the daemon, as its
            // default action would: every setting is read at start-up, so it is noted and ignored.
            hangup: watch(SignalKind::hangup(), "SIGHUP"),
        }
    }

    /// Resolves on SIGINT or SIGTERM.
    #[cfg(unix)]
    pub async fn wait(mut self) {
        async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        loop {
            tokio::select! {
                _ = next(&mut self.int) => return tracing::info!("SIGINT received"),
                _ = next(&mut self.term) => return tracing::info!("SIGTERM received"),
                _ = next(&mut self.hangup) => tracing::info!(
                    "SIGHUP received: ignored (settings are read at start-up; restart the daemon to change them)"
                ),
            }
        }
    }

    #[cfg(windows)]
    pub fn install() -> Self {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
        let events = match (ctrl_c(), ctrl_break(), ctrl_close(), ctrl_shutdown()) {
            (Ok(ctrl_c), Ok(brk), Ok(close), Ok(shutdown)) => Ok(WindowsEvents {
                ctrl_c,
                brk,
                close,
                shutdown,
            }),
            _ => {
                tracing::error!("cannot watch console events; only Ctrl-C stops the daemon");
                Err(ctrl_c().ok())
            }
        };
        Self { events }
    }

    /// Resolves on Ctrl-C or Ctrl-Break, or when the console closes or the system shuts down.
    #[cfg(windows)]
    pub async fn wait(self) {
        let mut e = match self.events {
            Ok(e) => e,
            Err(Some(mut ctrl_c)) => {
                ctrl_c.recv().await;
                return tracing::info!("Ctrl-C received");
            }
            Err(None) => return std::future::pending().await,
        };
        tokio::select! {
            _ = e.ctrl_c.recv() => tracing::info!("Ctrl-C received"),
            _ = e.brk.recv() => tracing::info!("Ctrl-Break received"),
            _ = e.close.recv() => tracing::info!("console closed"),
            _ = e.shutdown.recv() => tracing::info!("system shutting down"),
        }
    }
}
