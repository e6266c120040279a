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
        if let (Some(pid), Some(start)) = (self.pid, self.pid_start_time) {
            if !super::process::is_alive(pid, start) {
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
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
