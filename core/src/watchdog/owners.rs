//! Does the owner hold its listener? The socket table names a listening socket's inode;
//! /proc/PID/fd links name the sockets a process holds (`socket:[INODE]`). The owner counts as
//! holding it when it or a process it started (a supervisor's child) does.

use std::collections::{HashMap, HashSet, VecDeque};

/// Processes looked at below the owner, at most (a fork bomb must not stall a pass).
const MAX_DESCENDANTS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerCheck {
    /// The owner or one of its descendants holds one of the sockets.
    Owner,
    /// Neither holds any: someone else listens.
    Other,
    /// The descriptors could not be read (another user's process, say): nothing is known.
    Unknown,
}

/// The socket inodes `pid` holds.
fn socket_inodes(pid: i32) -> std::io::Result<HashSet<u64>> {
    let mut found = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        if let Some(inode) = std::fs::read_link(fd.path()).ok().and_then(|t| {
            t.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        }) {
            found.insert(inode);
        }
    }
    Ok(found)
}

/// The children of every thread of `pid` (/proc/PID/task/TID/children).
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// The socket inodes of each process looked at during one pass: a process owning many ports
/// has its descriptor table read once, not once per port.
#[derive(Default)]
pub struct FdTables(HashMap<i32, Option<HashSet<u64>>>);

impl FdTables {
    fn of(&mut self, pid: i32) -> Option<&HashSet<u64>> {
        self.0
            .entry(pid)
            .or_insert_with(|| socket_inodes(pid).ok())
            .as_ref()
    }
}

/// Whether `owner` (or a process it started) holds one of the sockets `inodes`.
pub fn held_by_owner(owner: i32, inodes: &HashSet<u64>, tables: &mut FdTables) -> OwnerCheck {
    let mut unknown = false;
    let mut queue = VecDeque::from([owner]);
    let mut seen = 0;
    while let Some(pid) = queue.pop_front() {
        seen += 1;
        match tables.of(pid) {
            Some(held) if !held.is_disjoint(inodes) => return OwnerCheck::Owner,
            Some(_) => {}
            None => unknown = true,
        }
        if seen < MAX_DESCENDANTS {
            queue.extend(children(pid));
        } else {
            unknown = true;
            break;
        }
    }
    if unknown {
        OwnerCheck::Unknown
    } else {
        OwnerCheck::Other
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let t = target.to_str().unwrap();
        t["socket:[".len()..t.len() - 1].parse().unwrap()
    }

    #[test]
    fn our_listener_is_ours_and_another_process_holds_nothing_of_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inodes = HashSet::from([inode_of(&l)]);
        let me = std::process::id() as i32;
        assert_eq!(
            held_by_owner(me, &inodes, &mut FdTables::default()),
            OwnerCheck::Owner
        );
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // The child inherits no descriptor (Rust sets CLOEXEC): not its socket.
        assert_eq!(
            held_by_owner(child.id() as i32, &inodes, &mut FdTables::default()),
            OwnerCheck::Other
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
