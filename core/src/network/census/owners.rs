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

/// One walk of /proc for the holders of some sockets: who holds each, and how many processes'
/// descriptors could not be read (another user's, without root or CAP_SYS_PTRACE).
#[derive(Debug, Default)]
pub struct ProcessWalk {
    pub holders: std::collections::HashMap<u64, Vec<ProcessInfo>>,
    /// Processes whose descriptors could not be read.
    pub unreadable: usize,
    /// The effective uid that walked (None where there are no uids).
    pub reader_uid: Option<u32>,
}

impl ProcessWalk {
    /// Who holds a listening socket of `socket_uid` (when known) that no process this walk read
    /// holds, in words; `reader` is who walked ("the daemon", "this user").
    ///
    /// When the walk read every process that could hold it (this process is root, or of the
    /// socket's own uid, and nothing was unreadable), the holder is not in this /proc at all:
    /// it runs in another PID namespace (a container sharing this network namespace, or this
    /// process runs in one). Otherwise some descriptors could not be read, and that is why.
    pub fn unseen_holder(&self, socket_uid: Option<u32>, reader: &str) -> String {
        let of = socket_uid
            .map(|u| format!(" of uid {u}"))
            .unwrap_or_default();
        let read_all = self.reader_uid == Some(0) || socket_uid == self.reader_uid;
        match self.reader_uid {
            Some(_) if read_all && self.unreadable == 0 => {
                let uid = socket_uid
                    .map(|u| format!(" (uid {u})"))
                    .unwrap_or_default();
                format!("a process in another PID namespace{uid}")
            }
            Some(me) if me != 0 => format!(
                "a process{of} ({reader}, uid {me}, may not read its descriptors: that needs root \
                 or CAP_SYS_PTRACE)"
            ),
            _ => format!("a process{of} (its descriptors could not be read)"),
        }
    }
}

/// Who holds the TCP sockets listening on `port`, in words: the processes ("pid 12 (nginx)"),
/// lowest PID first, or, when something listens that no readable process holds, who it is
/// (see [`ProcessWalk::unseen_holder`]; `reader` names who looked). Empty: nothing listens.
#[cfg(target_os = "linux")]
pub fn listener_holders(port: u16, reader: &str) -> Result<Vec<String>, CensusError> {
    let inodes = super::listener_inodes(port)?;
    let walk = holders_by_inode(&inodes);
    let mut found: Vec<&ProcessInfo> = walk.holders.values().flatten().collect();
    found.sort_by_key(|p| p.pid);
    found.dedup();
    if found.is_empty() && !inodes.is_empty() {
        return Ok(vec![walk.unseen_holder(None, reader)]);
    }
    Ok(found.into_iter().map(ToString::to_string).collect())
}

/// The processes whose descriptors include one of the sockets `inodes`, lowest PID first
/// (one walk of /proc; processes whose descriptors cannot be read are left out).
#[cfg(target_os = "linux")]
pub fn processes_holding(inodes: &std::collections::HashSet<u64>) -> Vec<ProcessInfo> {
    let mut found: Vec<ProcessInfo> = holders_by_inode(inodes)
        .holders
        .into_values()
        .flatten()
        .collect();
    found.sort_by_key(|p| p.pid);
    found.dedup();
    found
}

/// For each of the sockets `inodes`, the processes holding it (one walk of /proc for all).
#[cfg(target_os = "linux")]
pub fn holders_by_inode(inodes: &std::collections::HashSet<u64>) -> ProcessWalk {
    let mut walk = ProcessWalk {
        // SAFETY: geteuid has no preconditions.
        reader_uid: Some(unsafe { libc::geteuid() }),
        ..Default::default()
    };
    if inodes.is_empty() {
        return walk;
    }
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return walk;
    };
    let found = &mut walk.holders;
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) => {
                // A process that exited meanwhile is no holder; one we may not read could be.
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    walk.unreadable += 1;
                }
                continue;
            }
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
    walk
}

/// Windows: the owning PIDs the socket table gives for the port's listening sockets, named
/// by sysinfo, lowest PID first (a process that is gone by then is named "").
#[cfg(windows)]
pub fn listener_holders(port: u16, _reader: &str) -> Result<Vec<String>, CensusError> {
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
        .map(|p| p.to_string())
        .collect())
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn listener_holders(_port: u16, _reader: &str) -> Result<Vec<String>, CensusError> {
    Err(CensusError::Unsupported)
}

#[cfg(not(target_os = "linux"))]
pub fn processes_holding(_inodes: &std::collections::HashSet<u64>) -> Vec<ProcessInfo> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
pub fn holders_by_inode(_inodes: &std::collections::HashSet<u64>) -> ProcessWalk {
    ProcessWalk::default()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn our_own_listener_is_found_and_a_free_port_has_nobody() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holders = listener_holders(port, "this test").unwrap();
        assert_eq!(holders.len(), 1, "{holders:?}");
        assert!(
            holders[0].starts_with(&format!("pid {} (", std::process::id())),
            "{holders:?}"
        );
        drop(listener);
        assert!(listener_holders(port, "this test").unwrap().is_empty());
    }

    #[test]
    fn a_holder_no_readable_process_holds_is_said_to_be_elsewhere_or_unreadable() {
        let walk = |unreadable, reader_uid| ProcessWalk {
            holders: Default::default(),
            unreadable,
            reader_uid: Some(reader_uid),
        };
        // Root read every process: the holder is in no /proc of this namespace.
        assert_eq!(
            walk(0, 0).unseen_holder(Some(1000), "the daemon"),
            "a process in another PID namespace (uid 1000)"
        );
        // So did the socket's own user.
        assert_eq!(
            walk(0, 1000).unseen_holder(Some(1000), "the daemon"),
            "a process in another PID namespace (uid 1000)"
        );
        // Another user may not read it, and says so (even when /proc hid it altogether).
        for unreadable in [0, 3] {
            assert_eq!(
                walk(unreadable, 65534).unseen_holder(Some(0), "the daemon"),
                "a process of uid 0 (the daemon, uid 65534, may not read its descriptors: that \
                 needs root or CAP_SYS_PTRACE)"
            );
        }
        // Root that could not read some process cannot tell.
        assert_eq!(
            walk(1, 0).unseen_holder(None, "the daemon"),
            "a process (its descriptors could not be read)"
        );
    }
}
