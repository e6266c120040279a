//! What one caller may hold, so no local user can take the whole range from the others: at most
//! `max_ports_per_uid` ports per uid (root exempt; callers that cannot be identified count as one
//! uid together; default half the range) and at most `max_ports_per_service` per service name
//! (default: the whole range, i.e. off: replicas of one service are normal, and a uid's services
//! share its quota; set it to stop one runaway service). Each is a count or a share of the
//! managed ranges. The holdings are counted as allocations come and
//! go, so a check is two map lookups.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::error::PortsError;
use super::lease::Allocation;
use super::pool::Pool;

/// A limit: a number of ports, or a share of the managed ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Share {
    Ports(usize),
    Percent(f64),
}

impl Share {
    /// The limit for ranges of `total` ports (at least one port).
    pub fn of(self, total: usize) -> usize {
        match self {
            Share::Ports(n) => n,
            Share::Percent(p) => ((total as f64 * p / 100.0).floor() as usize).max(1),
        }
    }
}

impl FromStr for Share {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad =
            || format!("'{s}' is neither a number of ports (20) nor a share of the range (50%)");
        match s.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(p > 0.0 && p <= 100.0) {
                    return Err(format!(
                        "'{s}': a share must be more than 0% and at most 100%"
                    ));
                }
                Ok(Share::Percent(p))
            }
            None => match s.parse::<usize>() {
                Ok(0) => Err("must be at least 1 port".into()),
                Ok(n) => Ok(Share::Ports(n)),
                Err(_) => Err(bad()),
            },
        }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Share::Ports(n) => write!(f, "{n}"),
            Share::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    pub per_uid: Share,
    pub per_service: Share,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            per_uid: Share::Percent(50.0),
            per_service: Share::Percent(100.0),
        }
    }
}

/// Ports held, per pool: per uid (None: callers that could not be identified) and per service.
/// Each pool has quotas of its own, as shares of its own size: a test suite's ports never count
/// against its user's service ports.
#[derive(Debug, Default)]
pub(super) struct Holdings {
    by_uid: HashMap<(Pool, Option<u32>), usize>,
    by_service: HashMap<(Pool, String), usize>,
}

impl Holdings {
    pub fn add(&mut self, pool: Pool, a: &Allocation) {
        *self.by_uid.entry((pool, a.owner_uid)).or_default() += 1;
        *self
            .by_service
            .entry((pool, a.service.clone()))
            .or_default() += 1;
    }

    pub fn remove(&mut self, pool: Pool, a: &Allocation) {
        if let Some(n) = self.by_uid.get_mut(&(pool, a.owner_uid)) {
            *n = n.saturating_sub(1);
        }
        let key = (pool, a.service.clone());
        if let Some(n) = self.by_service.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.by_service.remove(&key);
            }
        }
    }

    /// Whether `uid` may hold one more port of `pool` (of `total` ports), for `service`.
    pub fn check(
        &self,
        quotas: &Quotas,
        pool: Pool,
        total: usize,
        uid: Option<u32>,
        service: &str,
    ) -> Result<(), PortsError> {
        if uid != Some(0) {
            let limit = quotas.per_uid.of(total);
            let held = self.by_uid.get(&(pool, uid)).copied().unwrap_or(0);
            if held >= limit {
                return Err(PortsError::QuotaExceeded {
                    quota: "max_ports_per_uid",
                    subject: match uid {
                        Some(uid) => format!("uid {uid}"),
                        None => "callers that cannot be identified".into(),
                    },
                    held,
                    limit,
                });
            }
        }
        let limit = quotas.per_service.of(total);
        let held = self
            .by_service
            .get(&(pool, service.to_string()))
            .copied()
            .unwrap_or(0);
        if held >= limit {
            return Err(PortsError::QuotaExceeded {
                quota: "max_ports_per_service",
                subject: format!("service {service}"),
                held,
                limit,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_and_apply_to_the_range() {
        assert_eq!("50%".parse(), Ok(Share::Percent(50.0)));
        assert_eq!("20".parse(), Ok(Share::Ports(20)));
        assert!("0".parse::<Share>().is_err());
        assert!("150%".parse::<Share>().is_err());
        assert!("half".parse::<Share>().is_err());
        assert_eq!(Share::Percent(50.0).of(101), 50);
        assert_eq!(Share::Percent(1.0).of(10), 1, "never zero");
        assert_eq!(Share::Ports(7).of(101), 7);
    }
}
