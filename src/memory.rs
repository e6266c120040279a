//! Handing freed memory back to the system. glibc's malloc keeps what a burst of allocations
//! freed (thousands of buffers of a client that never read its answers) in its arenas, so the
//! daemon's resident memory would stay at the burst's peak after the client is gone. When such
//! a connection closes, `malloc_trim` returns the free pages: at most once a second, on a
//! thread of its own, a moment after the close (the connection's buffers are dropped with it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long after a close the trim runs, so that one pass covers a burst of closes.
const SETTLE: Duration = Duration::from_millis(500);
/// The shortest time between two trims.
const SPACING: Duration = Duration::from_secs(1);

/// A trim was asked for since the last one started.
static ASKED: AtomicBool = AtomicBool::new(false);
/// The trimming thread is alive (one at a time).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Returns freed memory to the system soon (see the module documentation).
pub fn give_back_freed() {
    ASKED.store(true, Ordering::Release);
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("portwarden-trim".into())
        .spawn(|| loop {
            std::thread::sleep(SETTLE);
            ASKED.store(false, Ordering::Release);
            trim();
            std::thread::sleep(SPACING);
            // Asked again meanwhile: trim once more; else stop (unless asked right now).
            if !ASKED.load(Ordering::Acquire) {
                RUNNING.store(false, Ordering::Release);
                if !ASKED.load(Ordering::Acquire) || RUNNING.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    if spawned.is_err() {
        RUNNING.store(false, Ordering::Release);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

/// Other allocators (musl, Windows) return memory by themselves or offer no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
