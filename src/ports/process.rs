//! Process identity from /proc: a PID plus its start time names one process even when the kernel
//! reuses the PID later. Also what an ownership claim needs to know about a process (its uids,
//! whether it is a kernel thread or a thread of another process) and its command line.

use std::io::Read;

/// `PF_KTHREAD` in the flags field of /proc/PID/stat (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or None when the
/// process does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let stat = Stat::parse(&stat)?;
    (!stat.zombie).then_some(stat.start_time)
}

/// Whether the process identified by (pid, start time) is still the one running.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    process_start_time(pid) == Some(start_time)
}

/// The fields of /proc/PID/stat that matter here.
struct Stat<'a> {
    comm: &'a str,
    zombie: bool,
    flags: u64,
    start_time: u64,
}

impl<'a> Stat<'a> {
    fn parse(stat: &'a str) -> Option<Self> {
        // The command name (field 2) is in parentheses and may contain spaces and ')': split at
        // the first '(' and the last ')'.
        let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
        let rest = &stat[stat.rfind(')')? + 1..];
        // rest starts at field 3 (state): flags (field 9) is index 6, starttime (22) index 19.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(Self {
            comm,
            zombie: *fields.first()? == "Z",
            flags: fields.get(6)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    }
}

/// What /proc says about one process, read for an ownership claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    /// The kernel's short name of the command (at most 15 bytes).
    pub comm: String,
    pub start_time: u64,
    pub real_uid: u32,
    pub effective_uid: u32,
    /// The process this id belongs to: differs from `pid` when `pid` names a thread.
    pub tgid: i32,
    pub kernel_thread: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessLookup {
    #[error("process {0} does not exist")]
    Missing(i32),
    /// Not a fact about the process: it may well exist.
    #[error("cannot read /proc/{pid}: {reason}")]
    Unreadable { pid: i32, reason: String },
}

/// What /proc/PID/stat alone says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStat {
    pub comm: String,
    pub start_time: u64,
    pub kernel_thread: bool,
}

fn read_proc(pid: i32, file: &str) -> Result<String, ProcessLookup> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProcessLookup::Missing(pid),
        // ESRCH: the process exited between the open and the read.
        _ if e.raw_os_error() == Some(libc::ESRCH) => ProcessLookup::Missing(pid),
        _ => ProcessLookup::Unreadable {
            pid,
            reason: e.to_string(),
        },
    })
}

/// Reads /proc/PID/stat. A process that exited (or is a zombie) is `Missing`; any other
/// failure is `Unreadable`.
pub fn process_stat(pid: i32) -> Result<ProcessStat, ProcessLookup> {
    if pid <= 0 {
        return Err(ProcessLookup::Missing(pid));
    }
    let text = read_proc(pid, "stat")?;
    let stat = Stat::parse(&text).ok_or_else(|| ProcessLookup::Unreadable {
        pid,
        reason: "unexpected stat format".into(),
    })?;
    if stat.zombie {
        return Err(ProcessLookup::Missing(pid));
    }
    Ok(ProcessStat {
        comm: stat.comm.to_string(),
        start_time: stat.start_time,
        kernel_thread: stat.flags & PF_KTHREAD != 0,
    })
}

/// Reads /proc/PID/stat and /proc/PID/status. A process that exited (or is a zombie) is
/// `Missing`; any other failure is `Unreadable`.
pub fn process_info(pid: i32) -> Result<ProcessInfo, ProcessLookup> {
    let stat = process_stat(pid)?;
    let unreadable = |what: &str| ProcessLookup::Unreadable {
        pid,
        reason: format!("unexpected {what}"),
    };
    let status = read_proc(pid, "status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::split_whitespace)
    };
    let tgid = field("Tgid:")
        .and_then(|mut f| f.next()?.parse().ok())
        .ok_or_else(|| unreadable("Tgid line"))?;
    let mut uids = field("Uid:").ok_or_else(|| unreadable("Uid line"))?;
    let mut uid = || -> Option<u32> { uids.next()?.parse().ok() };
    let (real_uid, effective_uid) = uid().zip(uid()).ok_or_else(|| unreadable("Uid line"))?;
    Ok(ProcessInfo {
        pid,
        comm: stat.comm,
        start_time: stat.start_time,
        real_uid,
        effective_uid,
        tgid,
        kernel_thread: stat.kernel_thread,
    })
}

/// The command line of `pid`, arguments joined by spaces, control characters replaced, cut to
/// at most `max_bytes` (on a character boundary). Empty when it cannot be read.
pub fn command_line(pid: i32, max_bytes: usize) -> String {
    let mut raw = Vec::new();
    let read = std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .and_then(|f| f.take(max_bytes as u64 * 4).read_to_end(&mut raw));
    if read.is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&raw);
    let clean: String = text
        .trim_end_matches('\0')
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate_on_char(clean, max_bytes)
}

fn truncate_on_char(mut s: String, max_bytes: usize) -> String {
    if s.len() > max_bytes {
        let mut cut = max_bytes;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_bogus_pid_is_not() {
        let me = std::process::id() as i32;
        let start = process_start_time(me).expect("own start time");
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert_eq!(process_start_time(i32::MAX), None);
        assert_eq!(process_start_time(-1), None);
    }

    #[test]
    fn own_info_names_this_process_and_its_uid() {
        let me = std::process::id() as i32;
        let info = process_info(me).expect("own info");
        assert_eq!(info.tgid, me);
        assert_eq!(Some(info.start_time), process_start_time(me));
        // SAFETY: getuid/geteuid cannot fail.
        assert_eq!(info.real_uid, unsafe { libc::getuid() });
        assert_eq!(info.effective_uid, unsafe { libc::geteuid() });
        assert!(!info.kernel_thread);
        assert!(matches!(
            process_info(i32::MAX),
            Err(ProcessLookup::Missing(_))
        ));
    }

    #[test]
    fn a_thread_id_is_not_its_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
        });
        let tid = rx.recv().unwrap();
        let info = process_info(tid).expect("thread info");
        assert_eq!(info.tgid, std::process::id() as i32);
        assert_ne!(info.tgid, info.pid);
        t.join().unwrap();
    }

    #[test]
    fn a_stat_line_with_parentheses_in_the_name_parses() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 2097152 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        let s = Stat::parse(line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.start_time, 777);
        assert_eq!(s.flags & PF_KTHREAD, PF_KTHREAD);
        assert!(!s.zombie);
    }

    #[test]
    fn command_lines_are_cleaned_and_cut_on_a_character() {
        assert_eq!(truncate_on_char("héllo".into(), 2), "h");
        let me = command_line(std::process::id() as i32, 256);
        assert!(!me.is_empty() && me.len() <= 256 && !me.contains('\0'));
    }
}
