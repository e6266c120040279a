//! Who may name a process as the owner of an allocation it asks for. Used where the caller's
//! identity comes from the kernel (SO_PEERCRED on a Unix socket) and the owner is only claimed:
//! the portserver protocol, whose request is nothing but a PID.

use super::lease::Caller;
use super::process::{process_info, process_stat, ProcessInfo, ProcessLookup};

/// What [`check_claim`] needs to know about `pid`. For the caller's own process only its stat
/// is read: SO_PEERCRED already says it is a process (the kernel records the thread group, not
/// the thread) of the caller's uid.
pub fn claimed_process(caller: &Caller, pid: i32) -> Result<ProcessInfo, ProcessLookup> {
    match caller.uid {
        Some(uid) if caller.pid == Some(pid) => {
            let stat = process_stat(pid)?;
            Ok(ProcessInfo {
                pid,
                comm: stat.comm,
                start_time: stat.start_time,
                real_uid: uid,
                effective_uid: uid,
                tgid: pid,
                kernel_thread: stat.kernel_thread,
            })
        }
        _ => process_info(pid),
    }
}

/// Whether `caller` may make `target` the owner of a port: its own process, any process of its
/// uid (real or effective), or any process at all for root. Never PID 1 (a client that meant its
/// parent and was re-parented to init would hold the port forever), a kernel thread, or a thread
/// that is not its process's leader (it is not a process: the owner check would follow the
/// thread, not the process). The refusal says why.
pub fn check_claim(caller: &Caller, target: &ProcessInfo) -> Result<(), String> {
    let pid = target.pid;
    if pid == 1 {
        return Err("pid 1 (init) cannot own a port; send your own pid".into());
    }
    if target.kernel_thread {
        return Err(format!(
            "pid {pid} ({}) is a kernel thread, not a process",
            target.comm
        ));
    }
    if target.tgid != pid {
        return Err(format!(
            "pid {pid} is a thread of process {}; name the process",
            target.tgid
        ));
    }
    if caller.pid == Some(pid) || caller.uid == Some(0) {
        return Ok(());
    }
    match caller.uid {
        Some(uid) if uid == target.real_uid || uid == target.effective_uid => Ok(()),
        Some(uid) => Err(format!(
            "pid {pid} ({}) belongs to uid {}, not to the caller's uid {uid}",
            target.comm, target.real_uid
        )),
        None => Err("the caller's identity is unknown (Unix sockets only)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: i32, uid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            comm: "python3".into(),
            start_time: 1,
            real_uid: uid,
            effective_uid: uid,
            tgid: pid,
            kernel_thread: false,
        }
    }

    fn caller(uid: u32, pid: i32) -> Caller {
        Caller {
            uid: Some(uid),
            pid: Some(pid),
        }
    }

    #[test]
    fn own_process_same_uid_and_root_may_claim() {
        assert!(check_claim(&caller(1000, 50), &process(50, 1000)).is_ok());
        assert!(check_claim(&caller(1000, 50), &process(51, 1000)).is_ok());
        assert!(check_claim(&caller(0, 50), &process(51, 1000)).is_ok());
        // A setuid program's effective uid counts too.
        let mut setuid = process(52, 0);
        setuid.effective_uid = 1000;
        assert!(check_claim(&caller(1000, 50), &setuid).is_ok());
    }

    #[test]
    fn the_callers_own_process_is_read_from_its_stat_alone() {
        let me = std::process::id() as i32;
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        let caller = Caller {
            uid: Some(uid),
            pid: Some(me),
        };
        let own = claimed_process(&caller, me).unwrap();
        assert_eq!(own, process_info(me).unwrap());
    }

    #[test]
    fn another_uid_init_kernel_threads_and_threads_are_refused() {
        let err = check_claim(&caller(1000, 50), &process(60, 1001)).unwrap_err();
        assert!(
            err.contains("uid 1001") && err.contains("uid 1000"),
            "{err}"
        );
        assert!(check_claim(&caller(0, 50), &process(1, 0)).is_err());
        let mut kthread = process(2, 0);
        kthread.kernel_thread = true;
        assert!(check_claim(&caller(0, 50), &kthread).is_err());
        let mut thread = process(61, 1000);
        thread.tgid = 60;
        assert!(check_claim(&caller(1000, 61), &thread).is_err());
        assert!(check_claim(&Caller::REMOTE, &process(70, 1000)).is_err());
    }
}
