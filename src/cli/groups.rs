//! Stopping what `portwarden up` started: each process leads a process group of its own, so
//! SIGTERM and SIGKILL reach whatever it started too.
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::child::Signals;
use super::prefixed::Printer;
use super::wait::seconds;

/// After SIGKILL, how long the processes have to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often a stopping group is looked at.
const POLL: Duration = Duration::from_millis(50);

/// One started process.
pub struct Running {
    pub name: String,
    /// Its PID, which is also its process group.
    pub pid: i32,
    pub alive: bool,
}

pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "exited".into(),
    }
}

/// Whether any process of `pid`'s group is left.
pub fn group_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks; -pid names the process group.
    pid > 0 && unsafe { libc::kill(-pid, 0) } == 0
}

pub fn signal_group(pid: i32, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill has no memory-safety preconditions; -pid is a group we started.
        unsafe { libc::kill(-pid, sig) };
    }
}

/// SIGTERM to every group still there, SIGKILL to what is left after `grace` (or at another
/// signal), then until every process is gone (at most [`KILL_WAIT`] more).
pub async fn stop_all(
    running: &mut [Running],
    exits: &mut mpsc::UnboundedReceiver<(usize, ExitStatus)>,
    signals: &mut Signals,
    grace: Duration,
    printer: &Printer,
) {
    let left = |r: &[Running]| r.iter().any(|p| p.alive || group_alive(p.pid));
    let names: Vec<&str> = running
        .iter()
        .filter(|p| p.alive)
        .map(|p| p.name.as_str())
        .collect();
    if !names.is_empty() {
        printer.say(&format!("sending SIGTERM to {}", names.join(", ")));
    }
    running
        .iter()
        .for_each(|p| signal_group(p.pid, libc::SIGTERM));
    let mut deadline = Instant::now() + grace;
    let mut killed = false;
    while left(running) {
        tokio::select! {
            Some((i, status)) = exits.recv() => {
                running[i].alive = false;
                printer.say(&format!("{} {}", running[i].name, describe(status)));
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(deadline), if !killed => {
                kill_all(running, printer, &format!("still running after {}", seconds(grace)));
                killed = true;
                deadline = Instant::now() + KILL_WAIT;
            }
            _ = signals.next(), if !killed => {
                kill_all(running, printer, "asked again");
                killed = true;
                deadline = Instant::now() + KILL_WAIT;
            }
        }
        if killed && Instant::now() >= deadline {
            printer.say("some processes did not go away after SIGKILL");
            return;
        }
    }
}

pub fn kill_all(running: &[Running], printer: &Printer, why: &str) {
    let names: Vec<&str> = running
        .iter()
        .filter(|p| p.alive || group_alive(p.pid))
        .map(|p| p.name.as_str())
        .collect();
    printer.say(&format!("{why}: sending SIGKILL to {}", names.join(", ")));
    running
        .iter()
        .for_each(|p| signal_group(p.pid, libc::SIGKILL));
}
