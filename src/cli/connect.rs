//! Reaching the daemon, and saying exactly why not: every address tried, each with what stood
//! in the way ("permission denied on /run/portwarden/portwarden.sock (you are uid 1000, the
//! socket is root:root 0755)", "nothing listens at http://127.0.0.1:7070"). With `--wait`, the
//! addresses are tried again until the daemon answers or the time is up.

#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use portwarden_client::{connect_with, ConnectError, Target};
use tonic::transport::Channel;

use super::commands::CliError;
use super::units::parse_duration;
use super::CommandClientArgs;

/// Pause between rounds of attempts while waiting.
const RETRY_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Attempt {
    pub target: String,
    pub problem: String,
}

/// No address answered.
#[derive(Debug)]
pub struct Unreachable {
    pub attempts: Vec<Attempt>,
    /// How long it waited, when --wait was given.
    pub waited: Option<String>,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach the portwarden daemon")?;
        if let Some(w) = &self.waited {
            write!(f, " (waited {w})")?;
        }
        write!(f, ":")?;
        for a in &self.attempts {
            write!(f, "\n  {}", a.problem)?;
        }
        write!(
            f,
            "\nIs `portwarden serve` running? Point clients at it with --addr or PORTWARDEN_ADDR \
             (unix:/PATH or http://HOST:PORT); --wait 5s waits for one that is starting"
        )
    }
}

/// Connects to the first address that answers (see [`Target::candidates`]).
pub async fn connect(args: &CommandClientArgs) -> Result<(Target, Channel), CliError> {
    let wait = match &args.wait {
        Some(w) => Some(parse_duration("--wait", w)?),
        None => None,
    };
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let candidates = Target::candidates(args.addr.as_deref());
    let explicit = candidates.len() == 1;
    let tls = args.tls();
    loop {
        let mut attempts = Vec::new();
        for target in &candidates {
            if let Target::Unix(path) = target {
                // A default socket that is not there was not tried; say where it was looked for.
                if !explicit && !path.exists() {
                    attempts.push(Attempt {
                        target: target.to_string(),
                        problem: format!("no socket at {}", path.display()),
                    });
                    continue;
                }
            }
            match connect_with(target, &tls).await {
                Ok(channel) => return Ok((target.clone(), channel)),
                Err(ConnectError::Unreachable { source, .. }) => attempts.push(Attempt {
                    target: target.to_string(),
                    problem: diagnose(target, &source),
                }),
                Err(other) => return Err(CliError::Connect(other)),
            }
        }
        match deadline {
            Some(d) if tokio::time::Instant::now() + RETRY_EVERY < d => {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            _ => {
                return Err(CliError::Unreachable(Unreachable {
                    attempts,
                    waited: args.wait.clone(),
                }))
            }
        }
    }
}

/// What stood in the way of `target`, in words that name it.
fn diagnose(target: &Target, error: &(dyn std::error::Error + 'static)) -> String {
    let io = io_error(error);
    match (target, io.map(std::io::Error::kind)) {
        (Target::Unix(path), Some(std::io::ErrorKind::PermissionDenied)) => {
            format!("permission denied on {}", permission_detail(path))
        }
        (Target::Unix(path), Some(std::io::ErrorKind::ConnectionRefused)) => format!(
            "nothing listens at {} (the socket file is left from a daemon that stopped)",
            path.display()
        ),
        (Target::Unix(path), Some(std::io::ErrorKind::NotFound)) => {
            format!("no socket at {}", path.display())
        }
        (Target::Tcp(addr), Some(std::io::ErrorKind::ConnectionRefused)) => {
            format!("nothing listens at {addr} (connection refused)")
        }
        (_, _) => format!("{target}: {}", portwarden_client::error_chain(error)),
    }
}

fn io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// "/run/x.sock (you are uid 1000, the socket is root:root 0755)", or the directory that
/// cannot be entered.
#[cfg(unix)]
fn permission_detail(path: &Path) -> String {
    let you = format!("you are uid {}", current_uid());
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{} ({you}, the socket is {})",
            path.display(),
            ownership(&m)
        ),
        Err(_) => {
            let blocking_dir = path
                .ancestors()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .find(|d| !searchable(d));
            match blocking_dir.and_then(|d| std::fs::metadata(d).ok().map(|m| (d, m))) {
                Some((dir, m)) => format!(
                    "{} ({you}; its directory {} is {})",
                    path.display(),
                    dir.display(),
                    ownership(&m)
                ),
                None => format!("{} ({you})", path.display()),
            }
        }
    }
}

#[cfg(unix)]
fn searchable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// "root:root 0755".
#[cfg(unix)]
fn ownership(m: &std::fs::Metadata) -> String {
    format!(
        "{}:{} {:04o}",
        name_of("/etc/passwd", m.uid()),
        name_of("/etc/group", m.gid()),
        m.mode() & 0o7777
    )
}

/// The name of uid/gid `id` in /etc/passwd or /etc/group, else the number.
#[cfg(unix)]
fn name_of(file: &str, id: u32) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let _password = fields.next()?;
                (fields.next()?.parse::<u32>().ok()? == id).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| id.to_string())
}

#[cfg(unix)]
fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// No Unix sockets here: only the path to name.
#[cfg(not(unix))]
fn permission_detail(path: &Path) -> String {
    path.display().to_string()
}
