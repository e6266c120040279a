//! Managed port ranges: parsing ("8000-8100", "9000"), membership, and overlap with the kernel's
//! ephemeral range.

use std::fmt;
use std::str::FromStr;

/// An inclusive range of TCP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn new(start: u16, end: u16) -> Result<Self, String> {
        if start == 0 {
            return Err("ports start at 1".into());
        }
        if start > end {
            return Err(format!("start {start} is greater than end {end}"));
        }
        Ok(Self { start, end })
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("'{p}' is not a port number (1-65535)"))
        };
        match s.split_once('-') {
            Some((a, b)) => Self::new(parse(a)?, parse(b)?),
            None => {
                let p = parse(s)?;
                Self::new(p, p)
            }
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// The set of managed ranges: sorted and non-overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(Vec<PortRange>);

impl RangeSet {
    pub fn new(mut ranges: Vec<PortRange>) -> Result<Self, String> {
        if ranges.is_empty() {
            return Err("at least one range is required".into());
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            if pair[1].start <= pair[0].end {
                return Err(format!("ranges {} and {} overlap", pair[0], pair[1]));
            }
        }
        Ok(Self(ranges))
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(port))
    }

    pub fn total(&self) -> usize {
        self.0.iter().map(PortRange::len).sum()
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().flat_map(PortRange::ports)
    }

    /// These ranges less the ports of `other`; None when nothing is left.
    pub fn without(&self, other: &RangeSet) -> Option<RangeSet> {
        let mut left = Vec::new();
        for r in &self.0 {
            let mut start = Some(r.start);
            for o in other
                .0
                .iter()
                .filter(|o| o.end >= r.start && o.start <= r.end)
            {
                if let Some(s) = start.filter(|s| *s < o.start) {
                    left.push(PortRange {
                        start: s,
                        end: o.start - 1,
                    });
                }
                start = o.end.checked_add(1).filter(|s| *s <= r.end);
            }
            if let Some(s) = start.filter(|s| *s <= r.end) {
                left.push(PortRange {
                    start: s,
                    end: r.end,
                });
            }
        }
        RangeSet::new(left).ok()
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// The part of `range` that lies inside the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), where outgoing connections may grab our ports.
fn ephemeral_overlap(range: &PortRange) -> Option<(PortRange, PortRange)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text
        .split_whitespace()
        .filter_map(|t| t.parse::<u16>().ok());
    let eph = PortRange::new(it.next()?, it.next()?).ok()?;
    let start = range.start.max(eph.start);
    let end = range.end.min(eph.end);
    (start <= end).then_some((PortRange { start, end }, eph))
}

/// One sentence per managed range that overlaps the kernel's ephemeral range.
pub fn ephemeral_warnings(ranges: &RangeSet) -> Vec<String> {
    ranges
        .ranges()
        .iter()
        .filter_map(|r| {
            ephemeral_overlap(r).map(|(overlap, eph)| {
                format!(
                    "range {r}: ports {overlap} are inside the kernel's ephemeral range {eph} \
                     (ip_local_port_range); outgoing connections may take them"
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_single_ports() {
        assert_eq!(
            "8000-8100".parse(),
            Ok(PortRange {
                start: 8000,
                end: 8100
            })
        );
        assert_eq!(
            "9000".parse(),
            Ok(PortRange {
                start: 9000,
                end: 9000
            })
        );
        assert!("8100-8000".parse::<PortRange>().is_err());
        assert!("0-10".parse::<PortRange>().is_err());
        assert!("80000".parse::<PortRange>().is_err());
        assert!("a-b".parse::<PortRange>().is_err());
    }

    #[test]
    fn rejects_overlapping_sets() {
        let a: PortRange = "8000-8100".parse().unwrap();
        let b: PortRange = "8100-8200".parse().unwrap();
        assert!(RangeSet::new(vec![a, b]).is_err());
        let c: PortRange = "9000-9001".parse().unwrap();
        let set = RangeSet::new(vec![c, a]).unwrap();
        assert_eq!(set.total(), 103);
        assert_eq!(set.to_string(), "8000-8100,9000-9001");
    }

    #[test]
    fn a_set_less_another_keeps_what_lies_outside_it() {
        let set =
            |v: &[&str]| RangeSet::new(v.iter().map(|r| r.parse().unwrap()).collect()).unwrap();
        let pool = set(&["15000-24999"]);
        assert_eq!(pool.without(&set(&["8000-8100"])), Some(pool.clone()));
        assert_eq!(
            pool.without(&set(&["20000-20100"])).unwrap().to_string(),
            "15000-19999,20101-24999"
        );
        assert_eq!(
            pool.without(&set(&["14000-15000", "24999"]))
                .unwrap()
                .to_string(),
            "15001-24998"
        );
        assert_eq!(pool.without(&set(&["1-65535"])), None);
    }
}
