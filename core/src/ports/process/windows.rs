//! Process identity on Windows, from sysinfo: the process list (a Toolhelp snapshot) says which
//! PIDs exist, and each process's creation time (GetProcessTimes, in seconds) tells a reused PID
//! from the process that owned the port. The rule is Linux's:
//!
//! - dead: the PID is not in a process list that could be read (it lists this very process, so
//!   the snapshot worked), or it names a process created at another time, or the process has
//!   exited and only its handle keeps the PID (the zombie's counterpart), or the host rebooted;
//! - unknown: anything else — the list could not be taken, or the process is listed but its
//!   creation time could not be read (a protected process, access denied).
//!
//! Creation times are whole seconds, so a PID reused within the same second as its previous
//! owner's start would pass for it; Windows also keeps a PID from being reused while any handle
//! to its process is open.
//!
//! Windows has no uids: [`ProcessDetails`] carries `u32::MAX` for both, which no caller matches
//! (ownership claims by uid exist only on the Unix socket, which Windows does not have).

use std::sync::OnceLock;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::{DeathCause, Liveness, OwnerError, ProcessDetails, ProcessIdentity};

/// "System Idle Process" and "System": the kernel's own, never exit.
const SYSTEM_PIDS: [i32; 2] = [0, 4];
/// What Windows has instead of a uid here (see the module doc).
const NO_UID: u32 = u32::MAX;
/// GetExitCodeProcess's answer for a process that has not exited.
const STILL_ACTIVE: u32 = 259;

/// What one look at the process list found for one PID.
enum Lookup {
    /// Listed, with its creation time (seconds since the Unix epoch), name and command line.
    Found {
        start_time: u64,
        name: String,
        cmd: Vec<String>,
    },
    /// Not in a list that did list this process: no such process.
    Gone,
    /// The list could not be read, or the process's creation time could not be.
    Failed(String),
}

fn lookup(pid: i32, with_cmd: bool) -> Lookup {
    if pid <= 0 {
        return Lookup::Gone;
    }
    let mut system = match System::new() {
        Ok(s) => s,
        Err(e) => return Lookup::Failed(format!("sysinfo unavailable: {e}")),
    };
    let me = Pid::from_u32(std::process::id());
    let target = Pid::from_u32(pid as u32);
    let kind = if with_cmd {
        ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always)
    } else {
        ProcessRefreshKind::nothing()
    };
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[me, target]), true, kind);
    // The snapshot lists every process; one without us in it was not read.
    if system.process(me).is_none() {
        return Lookup::Failed("the process list could not be read".into());
    }
    let Some(process) = system.process(target) else {
        return Lookup::Gone;
    };
    let start_time = process.start_time();
    if start_time == 0 {
        return Lookup::Failed(format!(
            "cannot read the creation time of process {pid} (access denied?)"
        ));
    }
    Lookup::Found {
        start_time,
        name: process.name().to_string_lossy().into_owned(),
        cmd: process
            .cmd()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    }
}

/// Whether `pid` names a process that has exited (its handle still held somewhere); None when
/// that cannot be asked (the process cannot be opened, e.g. another user's protected one).
fn has_exited(pid: i32) -> Option<bool> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    // SAFETY: plain Win32 calls; the handle is closed before returning.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid as u32);
        if handle.is_null() {
            return None;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &mut code) != 0;
        CloseHandle(handle);
        ok.then_some(code != STILL_ACTIVE)
    }
}

/// The kernel's boot counter (`BootId` under Memory Management\PrefetchParameters, one more at
/// every boot since Windows 8), read once. None where it is not kept (Wine, older systems):
/// the creation time alone still tells a process of an earlier boot from a new one.
pub fn boot_id() -> Option<&'static str> {
    static BOOT_ID: OnceLock<Option<String>> = OnceLock::new();
    BOOT_ID.get_or_init(read_boot_counter).as_deref()
}

fn read_boot_counter() -> Option<String> {
    use windows_sys::Win32::System::Registry::{
        RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_DWORD,
    };
    let wide = |s: &str| s.encode_utf16().chain([0]).collect::<Vec<u16>>();
    let key = wide(
        r"SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters",
    );
    let value = wide("BootId");
    let mut data = 0u32;
    let mut size = std::mem::size_of::<u32>() as u32;
    // SAFETY: NUL-terminated UTF-16 names, and a DWORD-sized buffer whose size is passed.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_DWORD,
            std::ptr::null_mut(),
            (&mut data as *mut u32).cast(),
            &mut size,
        )
    };
    (rc == 0).then(|| format!("windows-boot-{data}"))
}

/// The live, exitable process `pid`, or why it cannot own a port.
pub fn identify_owner_detailed(pid: i32) -> Result<(ProcessIdentity, ProcessDetails), OwnerError> {
    if SYSTEM_PIDS.contains(&pid) {
        return Err(OwnerError::Immortal(pid));
    }
    match lookup(pid, false) {
        Lookup::Found {
            start_time, name, ..
        } => {
            if has_exited(pid) == Some(true) {
                return Err(OwnerError::NoSuchProcess(pid));
            }
            Ok((
                ProcessIdentity {
                    pid,
                    start_time,
                    boot_id: boot_id().map(str::to_string),
                },
                ProcessDetails {
                    comm: name,
                    real_uid: NO_UID,
                    effective_uid: NO_UID,
                },
            ))
        }
        Lookup::Gone => Err(OwnerError::NoSuchProcess(pid)),
        Lookup::Failed(reason) => Err(OwnerError::Unreadable { pid, reason }),
    }
}

/// As [`identify_owner_detailed`]; the uid given by the transport is kept as the caller's.
pub fn identify_peer(pid: i32, uid: u32) -> Result<(ProcessIdentity, ProcessDetails), OwnerError> {
    identify_owner_detailed(pid).map(|(id, details)| {
        (
            id,
            ProcessDetails {
                real_uid: uid,
                effective_uid: uid,
                ..details
            },
        )
    })
}

/// The command line of `pid` (arguments joined by spaces, control characters as spaces, cut
/// on a character boundary); empty when it cannot be read.
pub fn command_line(pid: i32, max_bytes: usize) -> String {
    let Lookup::Found { cmd, .. } = lookup(pid, true) else {
        return String::new();
    };
    crate::text::single_line(&cmd.join(" "), max_bytes)
}

impl ProcessIdentity {
    /// Whether this process still runs.
    pub fn liveness(&self) -> Liveness {
        if let (Some(then), Some(now)) = (self.boot_id.as_deref(), boot_id()) {
            if then != now {
                return Liveness::Dead(DeathCause::Rebooted);
            }
        }
        match lookup(self.pid, false) {
            Lookup::Gone => Liveness::Dead(DeathCause::Exited),
            Lookup::Found { start_time, .. } if start_time != self.start_time => {
                Liveness::Dead(DeathCause::PidReused)
            }
            Lookup::Found { .. } if has_exited(self.pid) == Some(true) => {
                Liveness::Dead(DeathCause::Exited)
            }
            Lookup::Found { .. } => Liveness::Alive,
            Lookup::Failed(reason) => Liveness::Unknown(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> i32 {
        std::process::id() as i32
    }

    #[test]
    fn our_own_process_is_alive_and_changed_identities_are_dead() {
        let (id, details) = identify_owner_detailed(me()).expect("we can own a port");
        assert!(id.start_time > 0);
        assert!(!details.comm.is_empty());
        assert_eq!(id.liveness(), Liveness::Alive);
        let reused = ProcessIdentity {
            start_time: id.start_time + 1,
            ..id.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Dead(DeathCause::PidReused));
        // Windows PIDs are multiples of 4: this one is never handed out.
        let gone = ProcessIdentity {
            pid: i32::MAX - 2,
            ..id
        };
        assert_eq!(gone.liveness(), Liveness::Dead(DeathCause::Exited));
    }

    #[test]
    fn a_child_that_exited_is_dead_and_system_processes_cannot_own() {
        let mut child = std::process::Command::new("cmd.exe")
            .args(["/c", "exit 0"])
            .spawn()
            .expect("cmd.exe runs");
        let pid = child.id() as i32;
        child.wait().unwrap();
        // The Child still holds its handle, so the PID may still be listed: exited anyway.
        match identify_owner_detailed(pid) {
            Err(OwnerError::NoSuchProcess(p)) => assert_eq!(p, pid),
            other => panic!("an exited child must not own a port: {other:?}"),
        }
        assert_eq!(identify_owner_detailed(4), Err(OwnerError::Immortal(4)));
        assert_eq!(
            identify_owner_detailed(-1),
            Err(OwnerError::NoSuchProcess(-1))
        );
        assert!(!command_line(me(), 256).is_empty());
    }
}
