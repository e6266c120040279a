//! Starting a child the way `portwarden run` and `portwarden up` do: its whole environment built
//! in the parent, a listening socket passed as fd 3 by systemd's socket-activation protocol
//! (`LISTEN_FDS=1`, `LISTEN_PID`, `LISTEN_FDNAMES`) when there is one, SIGTERM to the child if
//! the supervisor dies, and optionally a process group of its own (so the supervisor can stop
//! everything the child started). Also the signals a supervisor passes on.
#![cfg(unix)]

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The first passed descriptor, by the socket-activation protocol.
pub const LISTEN_FD: RawFd = 3;
/// The socket-activation variables: set by us for a child that gets a socket, never inherited.
pub const ACTIVATION_VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// SIGINT, SIGTERM and SIGHUP, to pass on.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> libc::c_int {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
        }
    }
}

unsafe extern "C" {
    /// The process environment, as execvp reads it.
    static mut environ: *const *const libc::c_char;
}

/// The child's environment, built whole in the parent: the given variables, and for a child
/// that gets a socket `LISTEN_FDS=1`, `LISTEN_FDNAMES` and a `LISTEN_PID=` entry with room for
/// the digits.
///
/// `LISTEN_PID` must be the child's own PID, known only after fork. Between fork and exec only
/// async-signal-safe calls are allowed: no allocation, no locks, no `setenv` (which allocates and
/// takes the environment lock another thread may have held at fork). So everything is allocated
/// here, and in the child [`ChildEnv::install_in_child`] only writes the digits of `getpid()`
/// into the reserved bytes and points `environ` at the prepared array. The Command's own
/// environment is left untouched (no `env` calls), so std execs with `environ` as it is at that
/// moment: ours.
pub struct ChildEnv {
    /// Owns the strings the pointers below point into.
    _vars: Vec<CString>,
    /// `LISTEN_PID=` followed by zeroed room for the digits and the terminating NUL.
    pid_entry: Option<Box<[u8]>>,
    /// Null-terminated, as `environ` is.
    pointers: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into `_vars` and `pid_entry`, owned alongside them; the value is
// only moved into the pre_exec closure and read there (in the child, a private copy).
unsafe impl Send for ChildEnv {}
unsafe impl Sync for ChildEnv {}

const PID_PREFIX: &[u8] = b"LISTEN_PID=";

impl ChildEnv {
    /// `vars` is the whole environment (inherited activation variables are dropped); with
    /// `fd_name`, the child gets a socket named so.
    pub fn new(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
        fd_name: Option<&str>,
    ) -> Self {
        let mut vars: Vec<CString> = vars
            .into_iter()
            .filter(|(k, _)| {
                !ACTIVATION_VARS
                    .iter()
                    .any(|own| k.as_bytes() == own.as_bytes())
            })
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let pid_entry = fd_name.map(|name| {
            for kv in ["LISTEN_FDS=1".to_string(), format!("LISTEN_FDNAMES={name}")] {
                if let Ok(kv) = CString::new(kv) {
                    vars.push(kv);
                }
            }
            // 20 digits hold any pid_t, plus the NUL.
            let mut entry = vec![0u8; PID_PREFIX.len() + 21].into_boxed_slice();
            entry[..PID_PREFIX.len()].copy_from_slice(PID_PREFIX);
            entry
        });
        let mut pointers: Vec<*const libc::c_char> = vars.iter().map(|v| v.as_ptr()).collect();
        if let Some(entry) = &pid_entry {
            pointers.push(entry.as_ptr().cast());
        }
        pointers.push(std::ptr::null());
        Self {
            _vars: vars,
            pid_entry,
            pointers,
        }
    }

    /// In the forked child: fd 3 is `listen_fd` (when given) and `LISTEN_PID` is this PID; the
    /// child gets SIGTERM if the supervisor dies; with `own_group`, it leads a process group of
    /// its own. Only async-signal-safe calls: getpid, setpgid, dup2, fcntl, prctl, getppid, plain
    /// memory writes.
    pub fn install_in_child(
        &self,
        listen_fd: Option<RawFd>,
        parent: libc::pid_t,
        own_group: bool,
    ) -> io::Result<()> {
        // SAFETY: each call is a plain syscall on values we own; the writes stay inside
        // `pid_entry`, whose length was sized for any pid_t.
        unsafe {
            if own_group && libc::setpgid(0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(entry) = &self.pid_entry {
                let digits = entry.as_ptr().add(PID_PREFIX.len()).cast_mut();
                write_decimal(digits, libc::getpid() as u64);
            }
            let handed = match listen_fd {
                // Already fd 3: only clear close-on-exec.
                Some(LISTEN_FD) => libc::fcntl(LISTEN_FD, libc::F_SETFD, 0),
                Some(fd) => libc::dup2(fd, LISTEN_FD),
                None => 0,
            };
            if handed == -1 {
                return Err(io::Error::last_os_error());
            }
            // The supervisor holds the lease: if it is killed, the command is told to stop.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            environ = self.pointers.as_ptr();
        }
        Ok(())
    }
}

/// Writes `n` in decimal and a NUL at `out`, without allocating. `out` must have room for 21
/// bytes.
unsafe fn write_decimal(out: *mut u8, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut len = 0;
    loop {
        tmp[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: the caller gave room for 21 bytes; len <= 20.
        unsafe { *out.add(i) = tmp[len - 1 - i] };
    }
    // SAFETY: as above.
    unsafe { *out.add(len) = 0 };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The environment a child would see, as name -> value.
    fn env_of(env: &ChildEnv) -> std::collections::HashMap<String, String> {
        env.pointers
            .iter()
            .take_while(|p| !p.is_null())
            .map(|p| {
                // SAFETY: every non-null pointer is a NUL-terminated string owned by `env`.
                let s = unsafe { std::ffi::CStr::from_ptr(*p) }.to_string_lossy();
                let (k, v) = s.split_once('=').unwrap_or((&s, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn vars(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn decimal_digits_fit_the_reserved_room() {
        let mut buf = [0xffu8; 21];
        unsafe { write_decimal(buf.as_mut_ptr(), 0) };
        assert_eq!(&buf[..2], b"0\0");
        unsafe { write_decimal(buf.as_mut_ptr(), u64::MAX) };
        assert_eq!(&buf[..21], b"18446744073709551615\0");
    }

    #[test]
    fn the_child_environment_replaces_inherited_activation_variables() {
        let inherited = vars(&[
            ("LISTEN_PID", "1"),
            ("LISTEN_FDS", "7"),
            ("PORT", "8123"),
            ("HOME", "/root"),
        ]);
        let env = ChildEnv::new(inherited, Some("web"));
        let entry = env.pid_entry.as_ref().unwrap();
        unsafe { write_decimal(entry.as_ptr().add(PID_PREFIX.len()).cast_mut(), 4242) };
        let seen = env_of(&env);
        assert_eq!(seen["LISTEN_FDS"], "1");
        assert_eq!(seen["LISTEN_PID"], "4242");
        assert_eq!(seen["LISTEN_FDNAMES"], "web");
        assert_eq!(seen["PORT"], "8123");
        assert_eq!(seen["HOME"], "/root");
        let listen_pids = env
            .pointers
            .iter()
            .take_while(|p| !p.is_null())
            .filter(|p| {
                unsafe { std::ffi::CStr::from_ptr(**p) }
                    .to_bytes()
                    .starts_with(PID_PREFIX)
            })
            .count();
        assert_eq!(listen_pids, 1);
    }

    #[test]
    fn a_child_without_a_socket_inherits_no_activation_variables() {
        let env = ChildEnv::new(vars(&[("LISTEN_FDS", "1"), ("PORT", "8000")]), None);
        let seen = env_of(&env);
        assert!(!seen.contains_key("LISTEN_FDS"), "{seen:?}");
        assert!(!seen.contains_key("LISTEN_PID"), "{seen:?}");
        assert_eq!(seen["PORT"], "8000");
    }
}
