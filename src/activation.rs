//! Socket activation: listeners handed over by systemd (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`; fds from 3 on). Taking them instead of binding means a restart never
//! refuses a connection attempt: the kernel queues it on the socket systemd keeps open.
//!
//! Which fd is which: a name `tcp` or `unix` (`FileDescriptorName=`) says it; any other name
//! (one `.socket` unit names all its fds after itself) leaves it to the socket's type.

#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};

use listenfd::ListenFd;

/// Name of the TCP listener's fd in `LISTEN_FDNAMES`.
pub const TCP_NAME: &str = "tcp";
/// Name of the Unix socket listener's fd in `LISTEN_FDNAMES`.
pub const UNIX_NAME: &str = "unix";

/// The fds belong to whoever takes them first: a second daemon started in the same process
/// (tests do that) must not wrap the same fd twice.
static CLAIMED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
#[error("socket activation: fd {fd} (named '{name}') is not a {expected} socket: {source}")]
pub struct ActivationError {
    fd: usize,
    name: String,
    expected: &'static str,
    source: std::io::Error,
}

/// The listeners systemd passed to this process (none when it passed none).
pub struct Activated {
    fds: ListenFd,
    names: Vec<String>,
    taken: Vec<bool>,
}

impl Activated {
    /// The fds of `LISTEN_FDS` when `LISTEN_PID` names this process; empty otherwise, and for
    /// every call after the first.
    pub fn from_env() -> Self {
        if CLAIMED.swap(true, Ordering::AcqRel) {
            return Self::none();
        }
        let fds = ListenFd::from_env();
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .ok()
            .map(|n| n.split(':').map(str::to_string).collect())
            .filter(|n: &Vec<String>| n.len() == fds.len())
            .unwrap_or_else(|| vec![String::new(); fds.len()]);
        let taken = vec![false; fds.len()];
        Self { fds, names, taken }
    }

    pub fn none() -> Self {
        Self {
            fds: ListenFd::empty(),
            names: Vec::new(),
            taken: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The TCP listener: the fd named `tcp`, else the first unnamed-for-us TCP socket.
    pub fn take_tcp(&mut self) -> Result<Option<std::net::TcpListener>, ActivationError> {
        self.take(TCP_NAME, UNIX_NAME, "TCP stream", |fds, i| {
            fds.take_tcp_listener(i)
        })
    }

    /// The Unix socket listener: the fd named `unix`, else the first unnamed-for-us Unix
    /// stream socket.
    #[cfg(unix)]
    pub fn take_unix(&mut self) -> Result<Option<UnixListener>, ActivationError> {
        self.take(UNIX_NAME, TCP_NAME, "Unix stream", |fds, i| {
            fds.take_unix_listener(i)
        })
    }

    /// `fd 5 (named 'x')` for every fd nobody took.
    pub fn leftovers(&self) -> Vec<String> {
        self.taken
            .iter()
            .enumerate()
            .filter(|(_, t)| !**t)
            .map(|(i, _)| format!("fd {} (named '{}')", i + 3, self.names[i]))
            .collect()
    }

    fn take<T>(
        &mut self,
        name: &str,
        other: &str,
        expected: &'static str,
        take: impl Fn(&mut ListenFd, usize) -> std::io::Result<Option<T>>,
    ) -> Result<Option<T>, ActivationError> {
        let error = |i: usize, names: &[String], source| ActivationError {
            fd: i + 3,
            name: names[i].clone(),
            expected,
            source,
        };
        // Named for this role: it must be of this kind.
        if let Some(i) = (0..self.names.len()).find(|&i| !self.taken[i] && self.names[i] == name) {
            let got = take(&mut self.fds, i).map_err(|e| error(i, &self.names, e))?;
            self.taken[i] = true;
            return Ok(got);
        }
        // Otherwise the first fd of this kind not named for the other role.
        for i in 0..self.names.len() {
            if self.taken[i] || self.names[i] == other {
                continue;
            }
            if let Ok(Some(listener)) = take(&mut self.fds, i) {
                self.taken[i] = true;
                return Ok(Some(listener));
            }
        }
        Ok(None)
    }
}
