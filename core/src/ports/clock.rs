//! Time as the allocator needs it: wall time for what people read and store, and the boot
//! clock (CLOCK_BOOTTIME: monotonic, counts suspend) for every duration, so a lease or a
//! quarantine neither ends early nor lasts forever when someone sets the wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// One moment on both clocks, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the Unix epoch (display, storage).
    pub wall_ms: i64,
    /// Milliseconds since boot (deadlines).
    pub mono_ms: i64,
}

impl Now {
    /// The deadline `after_ms` from now on both clocks.
    pub fn plus(self, after_ms: i64) -> Deadline {
        Deadline {
            wall_ms: self.wall_ms.saturating_add(after_ms),
            mono_ms: self.mono_ms.saturating_add(after_ms),
        }
    }
}

/// A point in the future: `mono_ms` decides, `wall_ms` is what is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub wall_ms: i64,
    pub mono_ms: i64,
}

impl Deadline {
    pub fn passed(self, now: Now) -> bool {
        self.mono_ms <= now.mono_ms
    }

    /// Milliseconds left (0 once passed).
    pub fn left_ms(self, now: Now) -> i64 {
        (self.mono_ms - now.mono_ms).max(0)
    }

    /// The same deadline for a new boot, where stored boot-clock values mean nothing: what the
    /// wall clock says is left, never more than `longest_ms` (a wall clock set back must not
    /// stretch it).
    pub fn rebased(wall_ms: i64, longest_ms: i64, now: Now) -> Deadline {
        now.plus((wall_ms - now.wall_ms).clamp(0, longest_ms.max(0)))
    }
}

/// RFC 3339 UTC time of a wall time in milliseconds since the Unix epoch, as messages and the
/// wire show it (one format everywhere).
pub use crate::wire::timestamp as rfc3339;

/// Where the allocator reads the time; tests substitute a clock whose wall time jumps.
pub trait Clock: Send + Sync {
    fn now(&self) -> Now;
}

/// The host's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Now {
            wall_ms,
            mono_ms: boot_clock_ms(),
        }
    }
}

#[cfg(target_os = "linux")]
fn boot_clock_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write; CLOCK_BOOTTIME exists on every supported kernel.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Milliseconds since boot, time asleep or hibernated included (as CLOCK_BOOTTIME).
#[cfg(windows)]
fn boot_clock_ms() -> i64 {
    // SAFETY: no preconditions.
    unsafe { windows_sys::Win32::System::SystemInformation::GetTickCount64() as i64 }
}

#[cfg(not(any(target_os = "linux", windows)))]
fn boot_clock_ms() -> i64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_boot_clock_not_the_wall() {
        let now = Now {
            wall_ms: 1_000_000,
            mono_ms: 50,
        };
        let d = now.plus(60_000);
        let wall_jumped = Now {
            wall_ms: now.wall_ms + 86_400_000,
            mono_ms: 1_050,
        };
        assert!(!d.passed(wall_jumped));
        assert_eq!(d.left_ms(wall_jumped), 59_000);
    }

    #[test]
    fn a_rebased_deadline_never_exceeds_its_length() {
        let now = Now {
            wall_ms: 1_000_000,
            mono_ms: 7,
        };
        // The wall clock went back a day while the host was down: capped at the length.
        assert_eq!(
            Deadline::rebased(now.wall_ms + 86_400_000, 60_000, now).mono_ms,
            60_007
        );
        assert_eq!(Deadline::rebased(now.wall_ms - 5, 60_000, now).mono_ms, 7);
        assert_eq!(Deadline::rebased(now.wall_ms + 10, 60_000, now).mono_ms, 17);
    }
}
