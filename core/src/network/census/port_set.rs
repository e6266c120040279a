//! A set of TCP ports as 65,536 bits: what a census watches and what it saw, in 8 KiB.

/// A bitset of the 65,536 TCP ports.
#[derive(Clone)]
pub(super) struct PortSet(Box<[u64; 1024]>);

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSet({} ports)", self.count_in(0, u16::MAX))
    }
}

impl PortSet {
    pub(super) fn new() -> Self {
        PortSet(Box::new([0; 1024]))
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(super) fn insert(&mut self, port: u16) {
        self.0[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    pub(super) fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    pub(super) fn count_in(&self, low: u16, high: u16) -> u64 {
        (low..=high)
            .filter(|port| self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0)
            .count() as u64
    }
}
