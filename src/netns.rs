//! One daemon per network namespace. Ports belong to a network namespace, and so do Linux
//! abstract Unix socket names: at start-up the daemon binds one (`@portwarden` unless
//! configured), which the kernel grants to exactly one socket per namespace and frees when the
//! process dies, however it dies (no stale lock file). A second daemon in the same namespace
//! finds the name taken, connects to it, learns the first daemon's PID from the kernel
//! (SO_PEERCRED) and its state file and listeners from the one JSON line the first daemon writes
//! to every connection, and refuses to start, naming them. Daemons in other namespaces
//! (containers, `ip netns`) each claim their own.

#[cfg(target_os = "linux")]
use std::io::Read;
#[cfg(target_os = "linux")]
use std::os::unix::io::AsRawFd;
#[cfg(target_os = "linux")]
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use serde::{Deserialize, Serialize};
#[cfg(target_os = "linux")]
use tokio::task::JoinHandle;

/// The abstract name claimed unless configured otherwise.
pub const DEFAULT_NAME: &str = "@portwarden";

/// Longest abstract name: sun_path is 108 bytes, one is the leading NUL.
const MAX_NAME_BYTES: usize = 107;

/// How long a second daemon waits for the first one's line.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the claiming daemon tells whoever connects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub version: String,
    pub state: String,
    /// Where it listens (`127.0.0.1:7070`, `unix:/run/portwarden/portwarden.sock`); empty
    /// while it is starting.
    pub listeners: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("another portwarden daemon already serves this network namespace (it holds the abstract socket {name}): {}; stop it, or run this one in another network namespace; to run two daemons here on purpose (ranges that do not overlap), give each its own --netns-lock name (--netns-lock @portwarden-b)", describe(.pid, .holder.as_ref()))]
    Taken {
        name: String,
        /// From the kernel (SO_PEERCRED), when it could be read.
        pid: Option<i32>,
        /// What it said about itself, when it answered.
        holder: Option<Holder>,
    },
    #[error("config key 'netns_lock': {0}")]
    BadName(String),
    #[error("cannot claim the abstract socket {name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

fn describe(pid: &Option<i32>, holder: Option<&Holder>) -> String {
    let pid = pid
        .map(|p| p.to_string())
        .or_else(|| holder.map(|h| h.pid.to_string()))
        .unwrap_or_else(|| "unknown".into());
    match holder {
        Some(h) if h.listeners.is_empty() => format!(
            "pid {pid}, state {} (starting)",
            crate::text::printable(&h.state)
        ),
        Some(h) => format!(
            "pid {pid}, state {}, listening on {}",
            crate::text::printable(&h.state),
            crate::text::printable(&h.listeners.join(", "))
        ),
        None => format!("pid {pid} (it did not say more)"),
    }
}

/// Said at start-up when no name is claimed on Linux (`netns_lock = none`), where one could be.
pub const UNCLAIMED_WARNING: &str = "netns_lock is none: nothing stops another portwarden daemon \
    in this network namespace from handing out the same ports; to run two daemons here on purpose \
    (ranges that do not overlap), give each its own --netns-lock name instead";

/// The default: Linux's network namespaces only.
pub fn default_name() -> Option<String> {
    cfg!(target_os = "linux").then(|| DEFAULT_NAME.to_string())
}

/// Checks a configured name: `@name`, at most 107 bytes, no NUL.
pub fn valid_name(name: &str) -> Result<(), String> {
    if cfg!(not(target_os = "linux")) {
        return Err(format!(
            "'{}': network namespaces and abstract sockets are Linux's; set it to none here (the \
             state file's lock keeps a second daemon off the same state)",
            crate::text::printable(name)
        ));
    }
    let Some(rest) = name.strip_prefix('@') else {
        return Err(format!(
            "'{}' must be an abstract socket name starting with @ (e.g. {DEFAULT_NAME}), or none",
            crate::text::printable(name)
        ));
    };
    if rest.is_empty() || rest.len() > MAX_NAME_BYTES || rest.contains('\0') {
        return Err(format!(
            "the name after @ must be 1-{MAX_NAME_BYTES} bytes without NUL"
        ));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn address(name: &str) -> Result<SocketAddr, ClaimError> {
    valid_name(name).map_err(ClaimError::BadName)?;
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(&name.as_bytes()[1..]).map_err(|source| ClaimError::Io {
        name: name.to_string(),
        source,
    })
}

/// The claim, held for the daemon's life; dropping it (or [`Claim::release`]) frees the name.
#[cfg(target_os = "linux")]
pub struct Claim {
    name: String,
    task: JoinHandle<()>,
}

#[cfg(target_os = "linux")]
impl Claim {
    /// Claims `name` for this namespace and answers each connection with what `holder` says
    /// then (as one JSON line). Must run inside a tokio runtime.
    pub fn take(
        name: &str,
        holder: impl Fn() -> Holder + Send + 'static,
    ) -> Result<Self, ClaimError> {
        let addr = address(name)?;
        let listener = match UnixListener::bind_addr(&addr) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(who_holds(name, &addr));
            }
            Err(source) => {
                return Err(ClaimError::Io {
                    name: name.into(),
                    source,
                })
            }
        };
        let io = |source| ClaimError::Io {
            name: name.to_string(),
            source,
        };
        listener.set_nonblocking(true).map_err(io)?;
        let listener = tokio::net::UnixListener::from_std(listener).map_err(io)?;
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    // A fresh socket's send buffer takes the short line at once; one that
                    // would block is not waited for (no task per connection, nothing to hold).
                    Ok((stream, _)) => {
                        let mut line = serde_json::to_vec(&holder()).unwrap_or_default();
                        line.push(b'\n');
                        let _ = stream.try_write(&line);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "namespace claim: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tracing::info!(
            name,
            "claimed {name}: the one portwarden daemon of this network namespace"
        );
        Ok(Self {
            name: name.to_string(),
            task,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frees the name now (rather than when the runtime gets to the dropped task).
    pub async fn release(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

#[cfg(target_os = "linux")]
impl Drop for Claim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Asks the daemon holding `addr` who it is.
#[cfg(target_os = "linux")]
fn who_holds(name: &str, addr: &SocketAddr) -> ClaimError {
    let mut pid = None;
    let mut holder = None;
    if let Ok(mut stream) = UnixStream::connect_addr(addr) {
        pid = peer_pid(&stream);
        let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
        let mut buf = Vec::new();
        let _ = (&mut stream).take(4096).read_to_end(&mut buf);
        holder = buf
            .split(|b| *b == b'\n')
            .next()
            .and_then(|line| serde_json::from_slice::<Holder>(line).ok());
    }
    ClaimError::Taken {
        name: name.to_string(),
        pid,
        holder,
    }
}

/// The peer's PID as the kernel recorded it at connect time.
#[cfg(target_os = "linux")]
pub(crate) fn peer_pid(stream: &UnixStream) -> Option<i32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid ucred and `len` its size; the fd is open for the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid)
}

/// Off Linux there is nothing to claim; the config refuses a name there ([`valid_name`]).
#[cfg(not(target_os = "linux"))]
pub struct Claim(std::convert::Infallible);

#[cfg(not(target_os = "linux"))]
impl Claim {
    pub fn take(
        name: &str,
        _holder: impl Fn() -> Holder + Send + 'static,
    ) -> Result<Self, ClaimError> {
        Err(ClaimError::BadName(
            valid_name(name).err().unwrap_or_default(),
        ))
    }

    pub fn name(&self) -> &str {
        match self.0 {}
    }

    pub async fn release(self) {
        match self.0 {}
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn names_are_abstract_and_bounded() {
        assert!(valid_name("@portwarden").is_ok());
        assert!(valid_name("portwarden").unwrap_err().contains("start"));
        assert!(valid_name("@").is_err());
        assert!(valid_name(&format!("@{}", "x".repeat(108))).is_err());
    }

    #[tokio::test]
    async fn a_second_claim_in_the_namespace_is_refused_naming_the_first() {
        let name = format!("@portwarden-unit-{}", std::process::id());
        let holder = Holder {
            pid: std::process::id(),
            version: "test".into(),
            state: "/tmp/a/state.db".into(),
            listeners: vec!["127.0.0.1:7070".into()],
        };
        let said = holder.clone();
        let first = Claim::take(&name, move || said.clone()).unwrap();
        let name2 = name.clone();
        let err = tokio::task::spawn_blocking(move || Claim::take(&name2, Holder::default))
            .await
            .unwrap()
            .err()
            .expect("refused");
        match &err {
            ClaimError::Taken { pid, holder: h, .. } => {
                assert_eq!(*pid, Some(std::process::id() as i32));
                assert_eq!(h.as_ref(), Some(&holder));
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("state /tmp/a/state.db"), "{err}");
        first.release().await;
        let again = Claim::take(&name, Holder::default).expect("the name is free once released");
        again.release().await;
    }
}
