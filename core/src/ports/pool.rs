//! The two pools a port comes from. The **service** pool (`--range`, default 8000-8100) is for
//! long-lived services: a released port rests for the quarantine before another service may have
//! it. The **test** pool (`--test-range`, default 15000-24999, as large as portpicker's own
//! portserver pool) is for test suites, which take and drop ports by the thousand: it is what the
//! portserver endpoint and the test clients draw from, so they never exhaust the services' ports,
//! and a released port there is reusable as soon as the kernel holds no socket on it.

use std::fmt;
use std::str::FromStr;

use super::range::RangeSet;

/// Which pool an allocation draws from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Pool {
    #[default]
    Service,
    Test,
}

impl Pool {
    pub const ALL: [Pool; 2] = [Pool::Service, Pool::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Service => "service",
            Pool::Test => "test",
        }
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pool {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "service" => Ok(Pool::Service),
            "test" => Ok(Pool::Test),
            other => Err(format!(
                "'{}' is not a pool: service or test",
                crate::text::printable(other)
            )),
        }
    }
}

/// The managed ports by pool: the service ranges always, the test pool when configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pools {
    service: RangeSet,
    test: Option<RangeSet>,
    /// Both together, for the rules that hold for any managed port.
    all: RangeSet,
}

impl Pools {
    /// Fails when the test pool overlaps the service ranges.
    pub fn new(service: RangeSet, test: Option<RangeSet>) -> Result<Self, String> {
        let mut both = service.ranges().to_vec();
        both.extend(test.iter().flat_map(|t| t.ranges().iter().copied()));
        let all = RangeSet::new(both).map_err(|e| {
            format!(
                "the test pool {} overlaps the service ranges {service}: {e}",
                test.as_ref().map(ToString::to_string).unwrap_or_default()
            )
        })?;
        Ok(Self { service, test, all })
    }

    /// The ranges of `pool`; None when the test pool is off.
    pub fn get(&self, pool: Pool) -> Option<&RangeSet> {
        match pool {
            Pool::Service => Some(&self.service),
            Pool::Test => self.test.as_ref(),
        }
    }

    /// The service ranges (`--range`).
    pub fn service(&self) -> &RangeSet {
        &self.service
    }

    /// Every managed port, of either pool.
    pub fn all(&self) -> &RangeSet {
        &self.all
    }

    /// The pool `port` belongs to, if any.
    pub fn of(&self, port: u16) -> Option<Pool> {
        if self.service.contains(port) {
            Some(Pool::Service)
        } else if self.test.as_ref().is_some_and(|t| t.contains(port)) {
            Some(Pool::Test)
        } else {
            None
        }
    }

    /// Where the test clients draw from: the test pool, or the service ranges without one.
    pub fn for_tests(&self) -> Pool {
        if self.test.is_some() {
            Pool::Test
        } else {
            Pool::Service
        }
    }
}

/// Whether the kernel holds a socket on a port, asked of the socket table at most once per
/// decision: a census of every socket for a pick over many candidates, a filtered one for a
/// single port. A table that cannot be read says "held": the port keeps resting.
pub(super) enum SocketsHeld {
    /// A pick that has not needed the table yet.
    NotTaken,
    Taken(Option<Box<crate::network::SocketCensus>>),
    /// One port is asked about: a dump filtered to it.
    OnPort,
}

impl SocketsHeld {
    pub(super) fn on(&mut self, port: u16) -> bool {
        use crate::network::{take_census, CensusRequest};
        match self {
            SocketsHeld::OnPort => {
                take_census(CensusRequest::on_port(port)).map_or(true, |c| c.has_local_port(port))
            }
            SocketsHeld::NotTaken => {
                let census = take_census(CensusRequest::FULL)
                    .map_err(|e| tracing::warn!(error = %e, "cannot read the socket table; resting test-pool ports keep resting"))
                    .ok()
                    .map(Box::new);
                *self = SocketsHeld::Taken(census);
                self.on(port)
            }
            SocketsHeld::Taken(census) => census.as_ref().is_none_or(|c| c.has_local_port(port)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortRange;

    fn set(r: &str) -> RangeSet {
        RangeSet::new(vec![r.parse::<PortRange>().unwrap()]).unwrap()
    }

    #[test]
    fn each_port_belongs_to_one_pool_and_the_pools_never_overlap() {
        let p = Pools::new(set("8000-8100"), Some(set("15000-24999"))).unwrap();
        assert_eq!(p.of(8000), Some(Pool::Service));
        assert_eq!(p.of(15000), Some(Pool::Test));
        assert_eq!(p.of(9000), None);
        assert_eq!(p.all().total(), 101 + 10_000);
        assert_eq!(p.for_tests(), Pool::Test);
        let err = Pools::new(set("8000-8100"), Some(set("8100-8200"))).unwrap_err();
        assert!(err.contains("overlaps the service ranges"), "{err}");
        let off = Pools::new(set("8000-8100"), None).unwrap();
        assert_eq!(off.get(Pool::Test), None);
        assert_eq!(off.for_tests(), Pool::Service);
        assert_eq!("test".parse(), Ok(Pool::Test));
        assert!("tests"
            .parse::<Pool>()
            .unwrap_err()
            .contains("service or test"));
    }
}
