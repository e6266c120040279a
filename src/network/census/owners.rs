//! Who holds a port: the processes whose open descriptors include the port's listening socket.
//! The socket table gives the socket's inode; /proc/PID/fd links name it as `socket:[INODE]`.
//! Scanning every process is costly, so this runs only for managed ports on the error path
//! ("port 8000 is in use by pid 1234 (python3)"), never on the census hot path.

use serde::Serialize;

use super::CensusError;

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub pid: i32,
    /// The command name from /proc/PID/comm.
    pub command: String,
}

impl std::fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// The processes that hold a TCP socket listening on `port`, lowest PID first. Processes whose
/// descriptors cannot be read (another user's, when not root) are left out.
#[cfg(target_os = "linux")]
pub fn listener_processes(port: u16) -> Result<Vec<ProcessInfo>, CensusError> {
    let inodes = super::listener_inodes(port)?;
    Ok(processes_holding(&inodes))
}

/// The processes whose descriptors include one of the sockets `inodes`, lowest PID first
/// (one walk of /proc; processes whose descriptors cannot be read are left out).
#[cfg(target_os = "linux")]
pub fn processes_holding(inodes: &std::collections::HashSet<u64>) -> Vec<ProcessInfo> {
    let mut found: Vec<ProcessInfo> = holders_by_inode(inodes).into_values().flatten().collect();
    found.sort_by_key(|p| p.pid);
    found.dedup();
    found
}

/// For each of the sockets `inodes`, the processes holding it (one walk of /proc for all).
#[cfg(target_os = "linux")]
pub fn holders_by_inode(
    inodes: &std::collections::HashSet<u64>,
) -> std::collections::HashMap<u64, Vec<ProcessInfo>> {
    let mut found: std::collections::HashMap<u64, Vec<ProcessInfo>> = Default::default();
    if inodes.is_empty() {
        return found;
    }
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let mut held: Vec<u64> = fds
            .flatten()
            .filter_map(|fd| {
                std::fs::read_link(fd.path()).ok().and_then(|target| {
                    target
                        .to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse::<u64>()
                        .ok()
                })
            })
            .filter(|inode| inodes.contains(inode))
            .collect();
        if held.is_empty() {
            continue;
        }
        held.dedup();
        // Any process can name itself anything: escape what could forge a log line.
        let command = std::fs::read(entry.path().join("comm"))
            .map(|c| {
                crate::text::printable(String::from_utf8_lossy(&c).trim_end_matches('\n'))
                    .into_owned()
            })
            .unwrap_or_default();
        for inode in held {
            found.entry(inode).or_default().push(ProcessInfo {
                pid,
                command: command.clone(),
            });
        }
    }
    for list in found.values_mut() {
        list.sort_by_key(|p| p.pid);
    }
    found
}

/// Windows: the owning PIDs the socket table gives for the port's listening sockets, named
/// by sysinfo, lowest PID first (a process that is gone by then is named "").
#[cfg(windows)]
pub fn listener_processes(port: u16) -> Result<Vec<ProcessInfo>, CensusError> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let pids = super::netstat::listener_pids(port)?;
    if pids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<Pid> = pids.iter().map(|p| Pid::from_u32(*p)).collect();
    let system = System::new().ok().map(|mut system| {
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&wanted),
            true,
            ProcessRefreshKind::nothing(),
        );
        system
    });
    Ok(pids
        .into_iter()
        .map(|pid| ProcessInfo {
            pid: pid as i32,
            command: system
                .as_ref()
                .and_then(|s| s.process(Pid::from_u32(pid)))
                .map(|p| crate::text::printable(&p.name().to_string_lossy()).into_owned())
                .unwrap_or_default(),
        })
        .collect())
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn listener_processes(_port: u16) -> Result<Vec<ProcessInfo>, CensusError> {
    Err(CensusError::Unsupported)
}

#[cfg(not(target_os = "linux"))]
pub fn processes_holding(_inodes: &std::collections::HashSet<u64>) -> Vec<ProcessInfo> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
pub fn holders_by_inode(
    _inodes: &std::collections::HashSet<u64>,
) -> std::collections::HashMap<u64, Vec<ProcessInfo>> {
    Default::default()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn our_own_listener_is_found_and_a_free_port_has_nobody() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holders = listener_processes(port).unwrap();
        assert_eq!(
            holders.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [std::process::id() as i32]
        );
        drop(listener);
        assert!(listener_processes(port).unwrap().is_empty());
    }
}
