//! Process identity from /proc: a PID plus its start time and the boot it started in names one
//! process, even when the kernel reuses the PID later or the host reboots.
//!
//! Only the kernel's "no such process" (ENOENT from /proc confirmed by ESRCH from kill(2)), a
//! zombie, a different start time or a different boot make a process dead. Any other failure
//! (the daemon out of descriptors, a /proc mounted with hidepid) is [`Liveness::Unknown`]: the
//! caller keeps the allocation, because a port handed to a second live owner is worse than one
//! leaked for a while.
//!
//! Also what an ownership claim needs to know about a process (its name and uids) and its
//! command line.
//!
//! Windows has no /proc: there the same answers come from sysinfo (the process list and each
//! process's creation time) under the same rule, see [`windows`].

#[cfg(not(windows))]
use std::io::{self, Read};
#[cfg(not(windows))]
use std::sync::OnceLock;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{boot_id, command_line, identify_owner_detailed, identify_peer};

/// The process that owns an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    pub pid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat); on Windows the
    /// creation time in seconds since the Unix epoch.
    pub start_time: u64,
    /// /proc/sys/kernel/random/boot_id of the boot it started in (None for state written
    /// before boot IDs were recorded); on Windows the kernel's boot counter, where readable.
    pub boot_id: Option<String>,
}

/// Why an owner is dead; each is certain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathCause {
    /// No such process any more (or only its zombie).
    Exited,
    /// The PID names a process with another start time.
    PidReused,
    /// The host rebooted since the owner started.
    Rebooted,
}

/// What the kernel says of an owner now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead(DeathCause),
    /// The kernel could not be asked (an I/O error); never a reason to reclaim.
    Unknown(String),
}

/// Why a PID cannot own an allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("process {0} does not exist")]
    NoSuchProcess(i32),
    #[error("{0} is a thread of process {1}, not a process: give the process ID")]
    Thread(i32, i32),
    #[error("process {0} never exits (init or a kernel thread) and cannot own a port")]
    Immortal(i32),
    #[error("cannot read process {pid}: {reason}")]
    Unreadable { pid: i32, reason: String },
}

#[cfg(not(windows))]
/// `PF_KTHREAD` in the flags field (9) of /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

#[cfg(not(windows))]
/// The fields of /proc/PID/stat we use.
struct Stat {
    comm: String,
    state: char,
    ppid: i32,
    flags: u64,
    start_time: u64,
}

#[cfg(not(windows))]
enum StatRead {
    Found(Stat),
    Gone,
    Failed(String),
}

#[cfg(not(windows))]
fn read_stat(pid: i32) -> StatRead {
    if pid <= 0 {
        return StatRead::Gone;
    }
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => t,
        Err(e) if is_gone(&e) && !exists_by_signal(pid) => return StatRead::Gone,
        Err(e) => return StatRead::Failed(e.to_string()),
    };
    parse_stat(&text).map_or_else(
        || StatRead::Failed(format!("unexpected /proc/{pid}/stat format")),
        StatRead::Found,
    )
}

#[cfg(not(windows))]
fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

#[cfg(not(windows))]
/// kill(pid, 0): ESRCH is the kernel's own "no such process"; success or EPERM mean it exists
/// (a /proc hidden by hidepid answers ENOENT for processes that are alive).
fn exists_by_signal(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(windows))]
fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may contain anything: it runs from the
    // first '(' to the last ')'. What follows starts at field 3.
    let close = text.rfind(')')?;
    let comm = text.get(text.find('(')? + 1..close)?.to_string();
    let rest = &text[close + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        flags: fields.get(6)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(not(windows))]
/// What /proc/PID/status says about a process: its thread group (equal to `pid` for a
/// process, another PID for a thread) and its real and effective uids.
struct Status {
    tgid: i32,
    real_uid: u32,
    effective_uid: u32,
}

#[cfg(not(windows))]
fn read_status(pid: i32) -> Result<Status, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::split_whitespace)
    };
    let tgid = field("Tgid:")
        .and_then(|mut f| f.next()?.parse().ok())
        .ok_or_else(|| format!("no Tgid in /proc/{pid}/status"))?;
    let mut uids = field("Uid:").ok_or_else(|| format!("no Uid in /proc/{pid}/status"))?;
    let mut uid = || -> Option<u32> { uids.next()?.parse().ok() };
    let (real_uid, effective_uid) = uid()
        .zip(uid())
        .ok_or_else(|| format!("bad Uid line in /proc/{pid}/status"))?;
    Ok(Status {
        tgid,
        real_uid,
        effective_uid,
    })
}

#[cfg(not(windows))]
/// This boot's ID, read once. None when the kernel does not expose it.
pub fn boot_id() -> Option<&'static str> {
    static BOOT_ID: OnceLock<Option<String>> = OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .as_deref()
}

/// What a claim on a process is checked against: its short command name and uids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDetails {
    /// The kernel's name of the command (at most 15 bytes).
    pub comm: String,
    pub real_uid: u32,
    pub effective_uid: u32,
}

/// Identifies `pid` as a possible owner: it must exist, be a process (not one of its threads),
/// and be able to exit (not init, not a kernel thread).
pub fn identify_owner(pid: i32) -> Result<ProcessIdentity, OwnerError> {
    identify_owner_detailed(pid).map(|(id, _)| id)
}

#[cfg(not(windows))]
/// The live, exitable process `pid` (its stat read once), or why it cannot own a port.
fn exitable_stat(pid: i32) -> Result<Stat, OwnerError> {
    if pid == 1 {
        return Err(OwnerError::Immortal(pid));
    }
    let stat = match read_stat(pid) {
        StatRead::Found(s) if s.state != 'Z' => s,
        StatRead::Found(_) | StatRead::Gone => return Err(OwnerError::NoSuchProcess(pid)),
        StatRead::Failed(reason) => return Err(OwnerError::Unreadable { pid, reason }),
    };
    // kthreadd is PID 2 and the parent of every kernel thread.
    if stat.flags & PF_KTHREAD != 0 || pid == 2 || stat.ppid == 2 {
        return Err(OwnerError::Immortal(pid));
    }
    Ok(stat)
}

#[cfg(not(windows))]
/// As [`identify_owner`], with the command name and uids a claim is checked against.
pub fn identify_owner_detailed(pid: i32) -> Result<(ProcessIdentity, ProcessDetails), OwnerError> {
    let stat = exitable_stat(pid)?;
    let status = read_status(pid).map_err(|reason| OwnerError::Unreadable { pid, reason })?;
    if status.tgid != pid {
        return Err(OwnerError::Thread(pid, status.tgid));
    }
    Ok(identified(pid, stat, status.real_uid, status.effective_uid))
}

#[cfg(not(windows))]
/// As [`identify_owner_detailed`] for the process at the other end of a Unix socket, whose
/// PID and uid the kernel gave (SO_PEERCRED records the process, never a thread): only its stat
/// is read.
pub fn identify_peer(pid: i32, uid: u32) -> Result<(ProcessIdentity, ProcessDetails), OwnerError> {
    Ok(identified(pid, exitable_stat(pid)?, uid, uid))
}

#[cfg(not(windows))]
fn identified(
    pid: i32,
    stat: Stat,
    real_uid: u32,
    effective_uid: u32,
) -> (ProcessIdentity, ProcessDetails) {
    (
        ProcessIdentity {
            pid,
            start_time: stat.start_time,
            boot_id: boot_id().map(str::to_string),
        },
        ProcessDetails {
            comm: stat.comm,
            real_uid,
            effective_uid,
        },
    )
}

#[cfg(not(windows))]
/// The command line of `pid`, arguments joined by spaces, control and formatting characters
/// replaced by spaces (so it passes the free-text rule), cut to at most `max_bytes` (on a
/// character boundary). Empty when it cannot be read.
pub fn command_line(pid: i32, max_bytes: usize) -> String {
    let mut raw = Vec::new();
    let read = std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .and_then(|f| f.take(max_bytes as u64 * 4).read_to_end(&mut raw));
    if read.is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&raw);
    crate::text::single_line(text.trim_end_matches('\0'), max_bytes)
}

#[cfg(not(windows))]
impl ProcessIdentity {
    /// Whether this process still runs.
    pub fn liveness(&self) -> Liveness {
        if let (Some(then), Some(now)) = (self.boot_id.as_deref(), boot_id()) {
            if then != now {
                return Liveness::Dead(DeathCause::Rebooted);
            }
        }
        match read_stat(self.pid) {
            StatRead::Gone => Liveness::Dead(DeathCause::Exited),
            StatRead::Found(s) if s.start_time != self.start_time => {
                Liveness::Dead(DeathCause::PidReused)
            }
            // A zombie has exited; only its exit status remains.
            StatRead::Found(s) if s.state == 'Z' => Liveness::Dead(DeathCause::Exited),
            StatRead::Found(_) => Liveness::Alive,
            StatRead::Failed(reason) => Liveness::Unknown(reason),
        }
    }
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;

    fn me() -> i32 {
        std::process::id() as i32
    }

    #[test]
    fn our_own_process_is_alive_and_changed_identities_are_dead() {
        let id = identify_owner(me()).expect("we can own a port");
        assert_eq!(id.liveness(), Liveness::Alive);
        let reused = ProcessIdentity {
            start_time: id.start_time + 1,
            ..id.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Dead(DeathCause::PidReused));
        let rebooted = ProcessIdentity {
            boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
            ..id.clone()
        };
        assert_eq!(rebooted.liveness(), Liveness::Dead(DeathCause::Rebooted));
        let gone = ProcessIdentity {
            pid: i32::MAX,
            ..id
        };
        assert_eq!(gone.liveness(), Liveness::Dead(DeathCause::Exited));
    }

    #[test]
    fn threads_init_and_kernel_threads_cannot_own() {
        assert_eq!(identify_owner(1), Err(OwnerError::Immortal(1)));
        assert_eq!(identify_owner(2), Err(OwnerError::Immortal(2)));
        assert_eq!(
            identify_owner(i32::MAX),
            Err(OwnerError::NoSuchProcess(i32::MAX))
        );
        assert_eq!(identify_owner(-1), Err(OwnerError::NoSuchProcess(-1)));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert_eq!(identify_owner(tid), Err(OwnerError::Thread(tid, me())));
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn stat_parsing_survives_hostile_command_names() {
        let line = "42 (a) b) (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.state, s.ppid, s.start_time), ('S', 1, 12345));
        assert_eq!(s.comm, "a) b) (c");
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S").is_none());
    }

    #[test]
    fn details_name_the_command_and_its_uids() {
        let (id, details) = identify_owner_detailed(me()).unwrap();
        assert_eq!(Some(id.clone()), identify_owner(me()).ok());
        // SAFETY: getuid/geteuid cannot fail.
        assert_eq!(details.real_uid, unsafe { libc::getuid() });
        assert_eq!(details.effective_uid, unsafe { libc::geteuid() });
        assert!(!details.comm.is_empty());
        let (peer_id, peer) = identify_peer(me(), details.real_uid).unwrap();
        assert_eq!((peer_id, peer.comm), (id, details.comm));
        assert_eq!(identify_peer(1, 0), Err(OwnerError::Immortal(1)));
    }

    #[test]
    fn command_lines_are_cleaned_and_cut_on_a_character() {
        assert_eq!(crate::text::truncate_on_char("héllo".into(), 2), "h");
        let line = command_line(me(), 256);
        assert!(!line.is_empty() && line.len() <= 256 && !line.contains('\0'));
    }
}
