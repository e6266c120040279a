//! At most one log line a second for something a client can repeat at will (a refused stream,
//! a watcher falling behind): the first says it happened, the flood does not reach the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct OncePerSecond(Mutex<Option<Instant>>);

impl OncePerSecond {
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// True at most once a second: log now.
    pub fn ready(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

impl Default for OncePerSecond {
    fn default() -> Self {
        Self::new()
    }
}
