//! An allocation and what keeps it alive: a process (pid + start time), a TTL lease, both, or
//! nothing (kept until released).

use std::collections::BTreeMap;

use super::clock::{Deadline, Now};
use super::process::{DeathCause, Liveness, ProcessIdentity};

/// What portwarden knows of the service behind an allocation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Handed out; the owner has not been seen listening yet.
    Allocated,
    /// The owner was seen listening.
    Active,
    /// It listened before and does not now, or a probe failed.
    Unhealthy,
    /// The owner is gone; the port is being reclaimed.
    Dead,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Allocated => "allocated",
            Health::Active => "active",
            Health::Unhealthy => "unhealthy",
            Health::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "allocated" => Health::Allocated,
            "active" => Health::Active,
            "unhealthy" => Health::Unhealthy,
            "dead" => Health::Dead,
            _ => return None,
        })
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Permanent,
    Process,
    Lease,
    ProcessAndLease,
}

impl OwnerKind {
    /// The name the wire and the CLI's tables use.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Permanent => "permanent",
            OwnerKind::Process => "process",
            OwnerKind::Lease => "lease",
            OwnerKind::ProcessAndLease => "process_and_lease",
        }
    }
}

/// Who is calling, as far as the transport can tell. Over the Unix socket the kernel vouches for
/// uid and pid (SO_PEERCRED); over TCP nothing is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

impl Caller {
    pub const REMOTE: Caller = Caller {
        uid: None,
        pid: None,
    };
}

/// The uid this daemon runs as.
#[cfg(unix)]
pub fn daemon_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The uid this daemon runs as (Windows has none: root's standing is nobody's).
#[cfg(not(unix))]
pub fn daemon_uid() -> u32 {
    0
}

/// Whether `uid` is root or the daemon's own account (`daemon_uid`): the operators, for whom
/// the shared limits keep a reserve (event streams, diagnostics).
pub fn is_operator(uid: Option<u32>, daemon_uid: u32) -> bool {
    uid.is_some_and(|u| u == 0 || u == daemon_uid)
}

/// Why an allocation was taken back. Each is certain; an owner whose state cannot be read is
/// never reclaimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReclaimReason {
    /// The owning process exited.
    OwnerExited,
    /// The owner's PID now names another process.
    PidReused,
    /// The host rebooted since the owner started.
    Rebooted,
    /// The TTL lease was not renewed in time.
    LeaseExpired,
}

impl ReclaimReason {
    pub const ALL: [ReclaimReason; 4] = [
        ReclaimReason::OwnerExited,
        ReclaimReason::PidReused,
        ReclaimReason::Rebooted,
        ReclaimReason::LeaseExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReclaimReason::OwnerExited => "owner_exited",
            ReclaimReason::PidReused => "pid_reused",
            ReclaimReason::Rebooted => "rebooted",
            ReclaimReason::LeaseExpired => "lease_expired",
        }
    }
}

impl From<DeathCause> for ReclaimReason {
    fn from(c: DeathCause) -> Self {
        match c {
            DeathCause::Exited => ReclaimReason::OwnerExited,
            DeathCause::PidReused => ReclaimReason::PidReused,
            DeathCause::Rebooted => ReclaimReason::Rebooted,
        }
    }
}

/// Whether an allocation's owner is still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vitality {
    Alive,
    Dead(ReclaimReason),
    /// The owner's process could not be read: kept, logged, counted.
    Unknown(String),
}

/// One port handed out, with everything recorded about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub port: u16,
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    /// The owning process, when there is one.
    pub owner: Option<ProcessIdentity>,
    pub owner_uid: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub lease_token: String,
    pub ttl_seconds: Option<u64>,
    pub allocated_at_ms: i64,
    pub renewed_at_ms: Option<i64>,
    /// When a TTL lease runs out unless renewed.
    pub expires: Option<Deadline>,
    pub health: Health,
    pub request_count: u64,
    pub error_count: u64,
    pub network_health: String,
    /// What the watchdog saw at its last pass (in memory only).
    pub observed: Option<super::observe::Observation>,
}

impl Allocation {
    pub fn owner_kind(&self) -> OwnerKind {
        match (self.owner.is_some(), self.ttl_seconds.is_some()) {
            (false, false) => OwnerKind::Permanent,
            (true, false) => OwnerKind::Process,
            (false, true) => OwnerKind::Lease,
            (true, true) => OwnerKind::ProcessAndLease,
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.owner.as_ref().map(|o| o.pid)
    }

    /// Whether the allocation is still owned at `now`: its lease (if any) has not run out and
    /// its process (if any) still runs. Permanent allocations are always alive.
    pub fn vitality(&self, now: Now) -> Vitality {
        self.vitality_with(now, ProcessIdentity::liveness)
    }

    /// As [`Allocation::vitality`], asking `liveness` about the owner (a sweep over many
    /// allocations of one process asks /proc once).
    pub fn vitality_with(
        &self,
        now: Now,
        liveness: impl FnOnce(&ProcessIdentity) -> Liveness,
    ) -> Vitality {
        if self.expires.is_some_and(|d| d.passed(now)) {
            return Vitality::Dead(ReclaimReason::LeaseExpired);
        }
        match self.owner.as_ref().map(liveness) {
            Some(Liveness::Dead(cause)) => Vitality::Dead(cause.into()),
            Some(Liveness::Unknown(why)) => Vitality::Unknown(why),
            Some(Liveness::Alive) | None => Vitality::Alive,
        }
    }

    /// The reclaim reason in words: "process 12 exited", "lease expired 40 ms ago".
    pub fn describe(&self, reason: ReclaimReason, now: Now) -> String {
        let pid = self.pid().unwrap_or(0);
        match reason {
            ReclaimReason::OwnerExited => format!("process {pid} exited"),
            ReclaimReason::PidReused => format!("pid {pid} now names another process"),
            ReclaimReason::Rebooted => format!("the host rebooted since process {pid} started"),
            ReclaimReason::LeaseExpired => match self.expires {
                Some(d) => format!("lease expired {} ms ago", now.mono_ms - d.mono_ms),
                None => "lease expired".into(),
            },
        }
    }

    /// Whether `token` (or the caller's identity) may release or renew this allocation: the
    /// token holder, root, or the same uid over the Unix socket.
    pub fn authorizes(&self, token: Option<&str>, caller: &Caller) -> Result<(), String> {
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            return if constant_time_eq(t.as_bytes(), self.lease_token.as_bytes()) {
                Ok(())
            } else {
                Err("lease token does not match".into())
            };
        }
        match caller.uid {
            Some(0) => Ok(()),
            Some(uid) if Some(uid) == self.owner_uid => Ok(()),
            Some(uid) => Err(format!(
                "uid {uid} is not the owner and gave no lease token"
            )),
            None => Err("the caller could not be identified (not this host's loopback or Unix socket): give the lease token".into()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh 128-bit lease token, hex encoded, from the kernel's CSPRNG.
pub fn new_token() -> std::io::Result<String> {
    let mut buf = [0u8; 16];
    fill_random(&mut buf)?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    Ok(buf
        .iter()
        .flat_map(|b| {
            [
                HEX[usize::from(b >> 4)] as char,
                HEX[usize::from(b & 15)] as char,
            ]
        })
        .collect())
}

/// One getrandom(2) call: no file to open on the hot path.
#[cfg(target_os = "linux")]
fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    // SAFETY: the buffer is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == buf.len() as isize {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The system's preferred generator (BCryptGenRandom), as Rust's own std uses on Windows.
#[cfg(windows)]
fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    use windows_sys::Win32::Security::Cryptography::{
        BCryptGenRandom, BCRYPT_USE_SYSTEM_PREFERRED_RNG,
    };
    // SAFETY: the buffer is valid for writes of its length; no algorithm handle is needed
    // with the system-preferred flag.
    let status = unsafe {
        BCryptGenRandom(
            std::ptr::null_mut(),
            buf.as_mut_ptr(),
            buf.len() as u32,
            BCRYPT_USE_SYSTEM_PREFERRED_RNG,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "BCryptGenRandom failed: NTSTATUS {status:#x}"
        )))
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned_by(uid: Option<u32>) -> Allocation {
        Allocation {
            port: 8000,
            service: "s".into(),
            purpose: String::new(),
            started_by: String::new(),
            owner: None,
            owner_uid: uid,
            labels: BTreeMap::new(),
            lease_token: "t0ken".into(),
            ttl_seconds: None,
            allocated_at_ms: 0,
            renewed_at_ms: None,
            expires: None,
            health: Health::Allocated,
            request_count: 0,
            error_count: 0,
            network_health: String::new(),
            observed: None,
        }
    }

    #[test]
    fn the_token_root_or_the_owner_uid_authorize_and_nobody_else() {
        let a = owned_by(Some(1000));
        let uds = |uid| Caller {
            uid: Some(uid),
            pid: Some(1),
        };
        assert!(a.authorizes(Some("t0ken"), &Caller::REMOTE).is_ok());
        assert!(
            a.authorizes(Some("t0keN"), &uds(0)).is_err(),
            "a wrong token is wrong even for root"
        );
        assert!(a.authorizes(None, &uds(1000)).is_ok());
        assert!(a.authorizes(None, &uds(0)).is_ok());
        assert!(a.authorizes(None, &uds(1001)).is_err());
        assert!(a.authorizes(None, &Caller::REMOTE).is_err());
        assert!(owned_by(None).authorizes(None, &uds(1000)).is_err());
    }

    #[test]
    fn a_lease_past_its_expiry_is_dead_and_a_permanent_one_never_is() {
        let at = |mono_ms| Now {
            wall_ms: 0,
            mono_ms,
        };
        let mut a = owned_by(None);
        assert_eq!(a.vitality(at(i64::MAX)), Vitality::Alive);
        a.ttl_seconds = Some(1);
        a.expires = Some(at(0).plus(1000));
        assert_eq!(a.vitality(at(999)), Vitality::Alive);
        assert_eq!(
            a.vitality(at(1000)),
            Vitality::Dead(ReclaimReason::LeaseExpired)
        );
    }
}
