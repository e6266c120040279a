//! Who may name a process as the owner of an allocation it asks for. Used where the caller's
//! identity comes from the kernel (SO_PEERCRED on a Unix socket) and the owner is only claimed:
//! the portserver protocol, whose request is nothing but a PID. Which processes can own a port at
//! all (not init, kernel threads or threads) is `identify_owner`'s rule, applied here too.

use super::lease::Caller;
use super::process::{
    identify_owner_detailed, identify_peer, OwnerError, ProcessDetails, ProcessIdentity,
};

/// Identifies the process `caller` claims, with what [`check_claim`] needs. For the caller's own
/// process only its stat is read: SO_PEERCRED already says it is a process of the caller's uid.
pub fn claimed_process(
    caller: &Caller,
    pid: i32,
) -> Result<(ProcessIdentity, ProcessDetails), OwnerError> {
    match caller.uid {
        Some(uid) if caller.pid == Some(pid) => identify_peer(pid, uid),
        _ => identify_owner_detailed(pid),
    }
}

/// Whether `caller` may make process `pid` (described by `target`) the owner of a port: its own
/// process, any process of its uid (real or effective: `python -m portpicker $$` names the
/// shell), or any process at all for root. The refusal says why.
pub fn check_claim(caller: &Caller, pid: i32, target: &ProcessDetails) -> Result<(), String> {
    if caller.pid == Some(pid) || caller.uid == Some(0) {
        return Ok(());
    }
    match caller.uid {
        Some(uid) if uid == target.real_uid || uid == target.effective_uid => Ok(()),
        Some(uid) => Err(format!(
            "pid {pid} ({}) belongs to uid {}, not to the caller's uid {uid}",
            crate::text::printable(&target.comm),
            target.real_uid
        )),
        None => Err("the caller's identity is unknown (Unix sockets only)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_uid(uid: u32) -> ProcessDetails {
        ProcessDetails {
            comm: "python3".into(),
            real_uid: uid,
            effective_uid: uid,
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
        assert!(check_claim(&caller(1000, 50), 50, &of_uid(1000)).is_ok());
        assert!(check_claim(&caller(1000, 50), 51, &of_uid(1000)).is_ok());
        assert!(check_claim(&caller(0, 50), 51, &of_uid(1000)).is_ok());
        // A setuid program's effective uid counts too.
        let setuid = ProcessDetails {
            effective_uid: 1000,
            ..of_uid(0)
        };
        assert!(check_claim(&caller(1000, 50), 52, &setuid).is_ok());
    }

    #[test]
    fn another_uids_process_is_refused_and_says_whose_it_is() {
        let err = check_claim(&caller(1000, 50), 60, &of_uid(1001)).unwrap_err();
        assert!(
            err.contains("uid 1001") && err.contains("uid 1000"),
            "{err}"
        );
        assert!(check_claim(&Caller::REMOTE, 70, &of_uid(1000)).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_callers_own_process_is_identified_from_its_stat_alone() {
        let me = std::process::id() as i32;
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        let own = claimed_process(&caller(uid, me), me).unwrap();
        let full = identify_owner_detailed(me).unwrap();
        assert_eq!(own.0, full.0);
        assert_eq!(own.1.comm, full.1.comm);
        assert!(matches!(
            claimed_process(&caller(0, me), 1),
            Err(OwnerError::Immortal(1))
        ));
    }
}
