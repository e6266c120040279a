//! An allocation and what keeps it alive: a process (pid + start time), a TTL lease, both, or
//! nothing (kept until released).

use std::collections::BTreeMap;

/// What portwarden knows of the service behind an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Permanent,
    Process,
    Lease,
    ProcessAndLease,
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

/// One port handed out, with everything recorded about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub port: u16,
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    pub pid: Option<i32>,
    pub pid_start_time: Option<u64>,
    pub owner_uid: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub lease_token: String,
    pub ttl_seconds: Option<u64>,
    pub allocated_at_ms: i64,
    pub renewed_at_ms: Option<i64>,
    pub expires_at_ms: Option<i64>,
    pub health: Health,
    pub request_count: u64,
    pub error_count: u64,
    pub network_health: String,
}

impl Allocation {
    pub fn owner_kind(&self) -> OwnerKind {
        match (self.pid.is_some(), self.ttl_seconds.is_some()) {
            (false, false) => OwnerKind::Permanent,
            (true, false) => OwnerKind::Process,
            (false, true) => OwnerKind::Lease,
            (true, true) => OwnerKind::ProcessAndLease,
        }
    }

    /// Why this allocation is dead at `now_ms`, if it is: its process exited (or the PID now
    /// names another process) or its lease expired. Permanent allocations never die here.
    pub fn death_reason(&self, now_ms: i64) -> Option<String> {
        self.death_reason_with(now_ms, super::process::is_alive)
    }

    /// As [`Allocation::death_reason`], asking `is_alive(pid, start time)` about the owner (a
    /// sweep over many allocations of one process asks /proc once).
    pub fn death_reason_with(
        &self,
        now_ms: i64,
        mut is_alive: impl FnMut(i32, u64) -> bool,
    ) -> Option<String> {
        if let (Some(pid), Some(start)) = (self.pid, self.pid_start_time) {
            if !is_alive(pid, start) {
                return Some(format!("process {pid} exited"));
            }
        }
        match self.expires_at_ms {
            Some(exp) if exp <= now_ms => Some(format!("lease expired {} ms ago", now_ms - exp)),
            _ => None,
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
            None => Err("a lease token is required over TCP".into()),
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

#[cfg(not(target_os = "linux"))]
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
            pid: None,
            pid_start_time: None,
            owner_uid: uid,
            labels: BTreeMap::new(),
            lease_token: "t0ken".into(),
            ttl_seconds: None,
            allocated_at_ms: 0,
            renewed_at_ms: None,
            expires_at_ms: None,
            health: Health::Allocated,
            request_count: 0,
            error_count: 0,
            network_health: String::new(),
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
        let mut a = owned_by(None);
        assert_eq!(a.death_reason(i64::MAX), None);
        a.ttl_seconds = Some(1);
        a.expires_at_ms = Some(1000);
        assert!(a.death_reason(999).is_none());
        assert!(a.death_reason(1000).is_some());
    }
}
