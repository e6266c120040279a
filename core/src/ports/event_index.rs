//! Which events concern each port and each service, kept in memory for `history`. SQLite
//! indexes on the event log would do the same, but each one writes one more page to the WAL on
//! every commit: measured, the two of them made an allocation 16 µs slower and a release too
//! (a third of the domain's cost). The map is rebuilt from the log at start-up and follows
//! appends and compaction; its size is bounded by the log's retention (`events_keep`).

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub(super) struct EventIndex {
    /// Sequences of each port's events, oldest first.
    by_port: HashMap<u16, VecDeque<u64>>,
    /// Sequences of each service's events, oldest first.
    by_service: HashMap<String, VecDeque<u64>>,
}

impl EventIndex {
    /// Notes a committed event (sequences only grow).
    pub fn add(&mut self, sequence: u64, port: Option<u16>, service: &str) {
        if let Some(port) = port {
            self.by_port.entry(port).or_default().push_back(sequence);
        }
        if !service.is_empty() {
            if let Some(seqs) = self.by_service.get_mut(service) {
                seqs.push_back(sequence);
            } else {
                self.by_service
                    .insert(service.to_string(), VecDeque::from([sequence]));
            }
        }
    }

    /// Forgets every sequence up to `through` (compacted away).
    pub fn compact(&mut self, through: u64) {
        fn trim<K>(map: &mut HashMap<K, VecDeque<u64>>, through: u64) {
            map.retain(|_, seqs| {
                let gone = seqs.partition_point(|&s| s <= through);
                seqs.drain(..gone);
                !seqs.is_empty()
            });
        }
        trim(&mut self.by_port, through);
        trim(&mut self.by_service, through);
    }

    /// The sequences that can match a filter on `port` and/or `service` (the shorter list when
    /// both are given), oldest first; None when neither is given (every event can match).
    pub fn candidates(&self, port: Option<u16>, service: Option<&str>) -> Option<&VecDeque<u64>> {
        static NONE: VecDeque<u64> = VecDeque::new();
        let by_port = port.map(|p| self.by_port.get(&p).unwrap_or(&NONE));
        let by_service = service.map(|s| self.by_service.get(s).unwrap_or(&NONE));
        match (by_port, by_service) {
            (Some(a), Some(b)) if b.len() < a.len() => Some(b),
            (Some(a), _) => Some(a),
            (None, Some(b)) => Some(b),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(ix: &EventIndex, port: Option<u16>, service: Option<&str>) -> Option<Vec<u64>> {
        ix.candidates(port, service)
            .map(|s| s.iter().copied().collect())
    }

    #[test]
    fn candidates_follow_appends_and_compaction() {
        let mut ix = EventIndex::default();
        ix.add(1, Some(8000), "web");
        ix.add(2, Some(8001), "api");
        ix.add(3, None, "web");
        ix.add(4, Some(8000), "");
        assert_eq!(seqs(&ix, Some(8000), None), Some(vec![1, 4]));
        assert_eq!(seqs(&ix, None, Some("web")), Some(vec![1, 3]));
        assert_eq!(seqs(&ix, Some(8001), Some("web")), Some(vec![2]));
        assert_eq!(seqs(&ix, Some(9999), None), Some(vec![]));
        assert_eq!(seqs(&ix, None, None), None);
        ix.compact(3);
        assert_eq!(seqs(&ix, Some(8000), None), Some(vec![4]));
        assert_eq!(seqs(&ix, None, Some("web")), Some(vec![]));
        assert!(ix.by_service.is_empty() && ix.by_port.len() == 1);
    }
}
