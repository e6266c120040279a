//! One local user must not take every event stream: an unprivileged account of the test's own
//! opens 64 connections x 64 Watch streams (4,096, each connection and stream inside the
//! per-user connection limits) over loopback TCP. It gets its share of the watchers and no more;
//! root still watches over gRPC and the REST event stream, and the refusals are logged without
//! flooding the log.

mod common;

#[path = "support/attacker.rs"]
mod attacker;
#[path = "support/watch_flood.rs"]
mod watch_flood;

use std::io::{BufRead, BufReader, Read, Write};

use std::os::unix::net::UnixStream;
use std::time::Duration;

use attacker::Attacker;
use common::ChildDaemon;
use portwarden_client::proto::*;

const ROLE: &str = "attacker_role_open_watch_streams";

/// Run by `run_role` as the attacker: opens the streams, says how many were accepted, and
/// holds them until its stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_role_open_watch_streams() {
    if !attacker::is_role(ROLE) {
        return;
    }
    let addr = std::env::var("TARGET").unwrap().parse().unwrap();
    let flood = watch_flood::open(addr, 64, 64, 65_535).await;
    println!(
        "accepted={} refused={} refusal={}",
        flood.accepted,
        flood.refused,
        flood.refusal.as_deref().unwrap_or("")
    );
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read(&mut [0u8; 1])).await;
    drop(flood);
}

/// The first event of the REST event stream over the Unix socket, as root.
fn first_sse_event(socket: &std::path::Path) -> (String, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /api/ports/watchdog/events?kind=allocated HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
    )
    .unwrap();
    let mut lines = BufReader::new(s);
    let mut status = String::new();
    lines.read_line(&mut status).unwrap();
    let mut event = String::new();
    for _ in 0..100 {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("event:") || line.starts_with("data:") {
            event.push_str(&line);
        }
        if line.starts_with("data:") {
            break;
        }
    }
    (status, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_gets_its_share_of_watchers_and_root_still_watches() {
    let Some(attacker) = Attacker::create("wat") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A quiet daemon (no pass events): the streams are what is measured.
    let d = ChildDaemon::spawn(
        dir.path(),
        "32100-32109",
        &["--quarantine", "0s", "--watchdog-interval", "30s"],
    );
    let mut role = attacker.run_role(ROLE, &[("TARGET", d.addr.to_string())]);
    let line = attacker::role_says(&mut role, "accepted=");
    let field = |name: &str| -> String {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    // Root watches over gRPC (the Unix socket) and gets events.
    let channel = portwarden_client::connect(&portwarden_client::Target::Unix(d.socket.clone()))
        .await
        .unwrap();
    let mut stream = common::watch(
        channel,
        WatchRequest {
            kinds: vec![EventKind::Allocated as i32],
            ..Default::default()
        },
    )
    .await;
    let mut c = d.unix().await;
    common::allocate(
        &mut c,
        AllocateRequest {
            service: "rootsvc".into(),
            ..Default::default()
        },
    )
    .await;
    let e = common::next_event(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(e.map(|e| e.service), Some("rootsvc".to_string()));

    let accepted: usize = field("accepted").parse().expect(&line);
    eprintln!("the attacker: {line}");
    assert!(
        accepted > 0 && accepted <= 256,
        "one uid holds at most its share (256) of the 4,096 watchers: {line}"
    );
    assert!(
        line.contains("max_watchers_per_uid"),
        "the refusal names the limit: {line}"
    );

    // And over the REST event stream.
    let socket = d.socket.clone();
    let sse = std::thread::spawn(move || first_sse_event(&socket));
    std::thread::sleep(Duration::from_millis(300));
    common::allocate(
        &mut c,
        AllocateRequest {
            service: "rootsse".into(),
            ..Default::default()
        },
    )
    .await;
    let (status, event) = sse.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(event.contains("rootsse"), "{event}");

    // Thousands of refusals, a few log lines.
    let log = d.log();
    let lines = log.matches("event stream refused").count();
    assert!(
        (1..=10).contains(&lines),
        "{lines} refusal lines in the log"
    );
    drop(role);
}
