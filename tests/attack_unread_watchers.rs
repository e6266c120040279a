//! A watcher that never reads must not make the daemon hold its events: an unprivileged account
//! of the test's own opens 64 connections x 64 Watch streams (it gets its share, 256) with
//! HTTP/2's largest windows, then stops reading anything, while root allocates and releases. The daemon's memory stays within the documented bound, the lagging watchers
//! are ended, root's rounds stay fast, and once their connections are closed the memory comes
//! back.

mod common;

#[path = "support/attacker.rs"]
mod attacker;
#[path = "support/watch_flood.rs"]
mod watch_flood;

use std::io::Read;
use std::time::{Duration, Instant};

use attacker::Attacker;
use common::{rss_kb, ChildDaemon};
use portwarden_client::proto::*;

const ROLE: &str = "attacker_role_hold_unread_watch_streams";

/// Run by `run_role` as the attacker: opens the streams, never reads them, and holds them
/// until its stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_role_hold_unread_watch_streams() {
    if !attacker::is_role(ROLE) {
        return;
    }
    let addr = std::env::var("TARGET").unwrap().parse().unwrap();
    let window = std::env::var("WINDOW").unwrap().parse().unwrap();
    let flood = watch_flood::open(addr, 64, 64, window).await;
    println!("accepted={} refused={}", flood.accepted, flood.refused);
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read(&mut [0u8; 1])).await;
    drop(flood);
}

/// `rounds` allocate + release rounds as root over the Unix socket (at most `limit` long):
/// the rounds done and the median round.
async fn rounds(d: &ChildDaemon, rounds: usize, limit: Duration) -> (usize, Duration) {
    let mut c = d.unix().await;
    let started = Instant::now();
    let mut took = Vec::with_capacity(rounds);
    for i in 0..rounds {
        if started.elapsed() > limit {
            break;
        }
        let t = Instant::now();
        let a = c
            .allocate(AllocateRequest {
                service: format!("r{}", i % 8),
                // ~4 KB events: the streams fill what HTTP/2 would buffer in a few rounds.
                labels: (0..16)
                    .map(|k| (format!("k{k}"), "v".repeat(250)))
                    .collect(),
                ..Default::default()
            })
            .await
            .expect("root allocates")
            .into_inner();
        c.release(ReleaseRequest {
            port: a.allocation.unwrap().port,
            lease_token: a.lease_token,
        })
        .await
        .unwrap();
        took.push(t.elapsed());
    }
    took.sort();
    let median = took.get(took.len() / 2).copied().unwrap_or_default();
    (took.len(), median)
}

/// Waits up to `timeout` for a log line holding one of `needles`.
async fn logged(d: &ChildDaemon, needles: &[&str], timeout: Duration) -> bool {
    common::eventually(timeout, || async {
        let log = d.log();
        needles.iter().any(|n| log.contains(n))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_never_read_are_cut_and_their_memory_comes_back() {
    let Some(attacker) = Attacker::create("unr") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(
        dir.path(),
        "32200-32249",
        &["--quarantine", "0s", "--watchdog-interval", "30s"],
    );
    let pid = d.child.id();
    let (_, quiet) = rounds(&d, 200, Duration::from_secs(5)).await;
    let before = rss_kb(pid);

    // Windows as large as HTTP/2 allows, and then the attacker stops (SIGSTOP): it reads
    // nothing, not even its socket, and the daemon cannot send.
    let mut role = attacker.run_role(
        ROLE,
        &[
            ("TARGET", d.addr.to_string()),
            ("WINDOW", (1u32 << 30).to_string()),
        ],
    );
    let line = attacker::role_says(&mut role, "accepted=");
    eprintln!("the attacker: {line}");
    let attacker_pid = role.child.id() as i32;
    // SAFETY: signals to our own child.
    unsafe { libc::kill(attacker_pid, libc::SIGSTOP) };
    let (done, busy) = rounds(&d, 400, Duration::from_secs(8)).await;
    let during = rss_kb(pid);
    let grew = during.saturating_sub(before);
    eprintln!(
        "rss {before} kB -> {during} kB with the streams; round {quiet:?} quiet, {busy:?} during ({done} rounds)"
    );
    assert!(
        logged(&d, &["watcher fell behind"], Duration::from_secs(5)).await,
        "the lagging watchers are ended and logged"
    );
    // 64 connections x (1 MiB of unread answers + one answer per stream), plus each open
    // stream's own state.
    assert!(
        grew < 48 * 1024,
        "the daemon grew by {grew} kB for watchers that never read"
    );
    // Generous, for a shared machine: the streams fan out to a debug build until they are cut.
    assert!(
        busy < quiet * 4 + Duration::from_millis(20),
        "a round took {busy:?} with the streams open ({quiet:?} without)"
    );
    // Their connections are closed, and the memory comes back, while the attacker still holds
    // its end.
    assert!(
        logged(
            &d,
            &[
                "closing a connection that does not read its answers",
                "closing a connection whose event stream stopped reading",
            ],
            Duration::from_secs(20),
        )
        .await,
        "the connections that read nothing are closed"
    );
    let back = common::eventually(Duration::from_secs(15), || async {
        rss_kb(pid) < before + 16 * 1024
    })
    .await;
    let after = rss_kb(pid);
    eprintln!("rss {after} kB once the connections were closed");
    assert!(
        back,
        "memory did not come back: {before} kB before, {during} kB with the streams, {after} kB now"
    );
    // SAFETY: as above.
    unsafe { libc::kill(attacker_pid, libc::SIGCONT) };
    drop(role);
}
