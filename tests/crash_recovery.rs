//! Durability: kill -9 the daemon in the middle of allocations, restart it on the same state,
//! and every acknowledged allocation is still there, none duplicated. Also: graceful shutdown on
//! SIGTERM, one daemon per state file, and a bad config refused with the key named.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bin, churn, ChildDaemon};
use portwarden_client::proto::*;

/// What the clients were told before the daemon died.
#[derive(Default)]
struct Acks {
    /// Acknowledged allocations not (acknowledged as) released: port -> (service, token).
    held: HashMap<u32, (String, String)>,
    /// Ports whose release was sent but not acknowledged when the daemon died.
    releasing: Vec<u32>,
    allocations: usize,
    interrupted: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_allocation_loses_no_acknowledged_allocation() {
    const WORKERS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = ChildDaemon::spawn(dir.path(), "24000-24100", &["--quarantine", "0s"]);
    let acks: Arc<Mutex<Acks>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let mut c = daemon.tcp().await;
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            // Each worker keeps up to 5 ports and cycles through allocate/release.
            let mut mine: Vec<u32> = Vec::new();
            for i in 0..2000 {
                if mine.len() == 5 {
                    let port = mine.remove(0);
                    let token = acks.lock().unwrap().held[&port].1.clone();
                    acks.lock().unwrap().releasing.push(port);
                    if c.release(ReleaseRequest {
                        port,
                        lease_token: token,
                    })
                    .await
                    .is_err()
                    {
                        acks.lock().unwrap().interrupted += 1;
                        return;
                    }
                    let mut a = acks.lock().unwrap();
                    a.releasing.retain(|p| *p != port);
                    a.held.remove(&port);
                }
                let service = format!("w{w}-{i}");
                match c
                    .allocate(AllocateRequest {
                        service: service.clone(),
                        ..Default::default()
                    })
                    .await
                {
                    Ok(r) => {
                        let r = r.into_inner();
                        let port = r.allocation.unwrap().port;
                        let mut a = acks.lock().unwrap();
                        assert!(
                            a.held.insert(port, (service, r.lease_token)).is_none(),
                            "port {port} acknowledged to two holders"
                        );
                        a.allocations += 1;
                        mine.push(port);
                    }
                    Err(_) => {
                        acks.lock().unwrap().interrupted += 1;
                        return;
                    }
                }
            }
        }));
    }
    // Let allocations run, then kill -9 while they are in flight.
    while acks.lock().unwrap().allocations < 200 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    daemon.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    assert_eq!(
        acks.interrupted, WORKERS,
        "every worker was cut off mid-run"
    );

    let daemon = ChildDaemon::spawn(dir.path(), "24000-24100", &["--quarantine", "0s"]);
    let mut c = daemon.tcp().await;
    let list = common::list(&mut c).await;
    let stored: HashMap<u32, String> = list.iter().map(|a| (a.port, a.service.clone())).collect();
    assert_eq!(stored.len(), list.len(), "no port stored twice");
    for (port, (service, _)) in &acks.held {
        if acks.releasing.contains(port) {
            continue; // its release was in flight: either outcome is right
        }
        assert_eq!(
            stored.get(port),
            Some(service),
            "acknowledged allocation of port {port} survived"
        );
    }
    // Anything else stored was in flight (at most one allocate per worker).
    let unacked = stored.keys().filter(|p| !acks.held.contains_key(p)).count();
    assert!(
        unacked <= WORKERS,
        "{unacked} unacknowledged allocations stored"
    );
    // Tokens survive the restart.
    let (port, (_, token)) = acks
        .held
        .iter()
        .find(|(p, _)| !acks.releasing.contains(p))
        .unwrap();
    c.release(ReleaseRequest {
        port: *port,
        lease_token: token.clone(),
    })
    .await
    .expect("token survives restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = ChildDaemon::spawn(dir.path(), "24200-24210", &[]);
    let mut c = daemon.tcp().await;
    let a = c
        .allocate(AllocateRequest {
            service: "kept".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let port = a.into_inner().allocation.unwrap().port;
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        !daemon.socket.exists(),
        "the Unix socket is removed on shutdown"
    );

    let daemon = ChildDaemon::spawn(dir.path(), "24200-24210", &[]);
    let mut c = daemon.tcp().await;
    let got = c
        .get(GetRequest { port })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap();
    assert_eq!(got.service, "kept");
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = ChildDaemon::spawn(dir.path(), "24300-24310", &[]);
    let out = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--unix-socket",
            "none",
            "--range",
            "24300-24310",
            // This is about the state file's lock, not the network namespace's.
            "--netns-lock",
            "none",
        ])
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another portwarden daemon"), "{err}");
}

#[test]
fn a_bad_config_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--range", "9000-8000"], "'range'"),
        (&["--quarantine", "soon"], "'quarantine'"),
        (&["--listen", "nowhere"], "'listen'"),
        (&["--watchdog-interval", "0s"], "'watchdog_interval'"),
    ];
    for (args, key) in cases {
        let out = Command::new(bin())
            .arg("serve")
            .args(*args)
            .arg("--state")
            .arg(dir.path().join("s.db"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{args:?}: {err}");
    }
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "quarantine = \"60s\"\nrnage = \"1-2\"\n").unwrap();
    let out = Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rnage"));
    // The environment is read too, and a flag beats it.
    let out = Command::new(bin())
        .arg("serve")
        .env("PORTWARDEN_RANGE", "5-1")
        .arg("--state")
        .arg(dir.path().join("s.db"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("'range'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_pass_reclaims_dead_owners_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let range = "24400-24410";
    let mut daemon = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let mut c = daemon.tcp().await;
    let mut owner = Command::new("sleep").arg("60").spawn().unwrap();
    let alloc = |service: &str| AllocateRequest {
        service: service.into(),
        ..Default::default()
    };
    let kept = common::allocate(&mut c, alloc("kept")).await;
    let listened = common::allocate(&mut c, alloc("listened")).await;
    let orphan = common::allocate(
        &mut c,
        AllocateRequest {
            pid: Some(owner.id() as i32),
            ..alloc("orphan")
        },
    )
    .await;
    let leased = common::allocate(
        &mut c,
        AllocateRequest {
            ttl_seconds: Some(1),
            ..alloc("leased")
        },
    )
    .await;
    assert!(daemon.terminate().success());

    // While the daemon is down: the owner dies, the lease runs out, a service starts listening.
    owner.kill().unwrap();
    owner.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let _listener = std::net::TcpListener::bind(("0.0.0.0", listened.port as u16)).unwrap();

    let daemon = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let mut c = daemon.tcp().await;
    let list = common::list(&mut c).await;
    let by_port: HashMap<u32, &Allocation> = list.iter().map(|a| (a.port, a)).collect();
    assert!(
        !by_port.contains_key(&orphan.port),
        "the dead process's port was reclaimed"
    );
    assert!(
        !by_port.contains_key(&leased.port),
        "the expired lease was reclaimed"
    );
    assert_eq!(
        by_port[&kept.port].health,
        Health::Allocated as i32,
        "a permanent allocation is kept as it was"
    );
    assert_eq!(
        by_port[&listened.port].health,
        Health::Active as i32,
        "seen listening in the socket table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_neither_kills_nor_disturbs_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ChildDaemon::spawn(dir.path(), "30300-30302", &[]);
    let mut c = d.tcp().await;
    c.allocate(AllocateRequest {
        service: "before".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) };
    }
    d.wait_for_log("SIGHUP received: ignored").unwrap();
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    let list = c.list(ListRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.allocations.len(), 1, "state untouched, still serving");
    assert!(d.terminate().success(), "and a clean stop afterwards");
}

/// Starts the daemon on `dir`'s state and returns its exit status and log when it stops by
/// itself within 10 s (it refused to start), or None when it runs.
fn refused(dir: &std::path::Path, range: &str, extra: &[&str]) -> Option<(i32, String)> {
    // A daemon killed with -9 leaves its socket file: its appearance is how a start is seen.
    let _ = std::fs::remove_file(dir.join("pw.sock"));
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--range", range])
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--unix-socket")
        .arg(dir.join("pw.sock"))
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut log = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut log);
            return Some((status.code().unwrap_or(-1), log));
        }
        if dir.join("pw.sock").exists() {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_state_file_is_refused_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let range = "30310-30339";
    {
        let mut d = ChildDaemon::spawn(dir.path(), range, &[]);
        let mut c = d.tcp().await;
        for i in 0..20 {
            c.allocate(AllocateRequest {
                service: format!("s{i}"),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        assert!(d.terminate().success());
    }
    // Someone (a restore gone wrong, a full disk) leaves an empty file in its place.
    std::fs::write(dir.path().join("state.db"), b"").unwrap();
    let _ = std::fs::remove_file(dir.path().join("state.db-wal"));
    let (code, log) = refused(dir.path(), range, &[]).expect("refused to start");
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("committed changes are missing"), "{log}");
    assert!(
        log.contains("--accept-state-loss"),
        "the way out is named: {log}"
    );
    // The operator accepts the loss: the daemon starts with what is left (nothing).
    let d = ChildDaemon::spawn(dir.path(), range, &["--accept-state-loss"]);
    let mut c = d.tcp().await;
    assert!(c
        .list(ListRequest::default())
        .await
        .unwrap()
        .into_inner()
        .allocations
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_write_ahead_log_after_kill_9_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let range = "30340-30349";
    {
        let mut d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
        let mut c = d.tcp().await;
        // Many committed changes, all in the write-ahead log (not yet checkpointed).
        churn(&mut c, "w", 150).await;
        // The reaper writes the marker within a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        d.kill9();
    }
    let wal = dir.path().join("state.db-wal");
    let len = std::fs::metadata(&wal).expect("a write-ahead log").len();
    assert!(len > 64 * 1024, "the log holds the changes ({len} bytes)");
    // Garbage over a frame in the middle: SQLite's recovery stops there, silently.
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.seek(SeekFrom::Start(len / 3)).unwrap();
    f.write_all(&[0xAB; 8192]).unwrap();
    drop(f);
    let (code, log) = refused(dir.path(), range, &[]).expect("refused to start");
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("committed changes are missing"), "{log}");
}

/// Whether the process `pid` catches `signal` (its SigCgt mask in /proc).
fn catches(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (signal - 1)) != 0
}

#[test]
fn a_stop_signal_during_start_up_is_a_clean_stop() {
    // A SIGTERM that arrives while the daemon starts (systemd stopping a unit that has just
    // started, a test that stops the daemon as soon as it says it is ready) must be a clean
    // stop: the handlers are in place before the first log line, not after start-up.
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--range", "30310-30312"])
        .arg("--netns-lock")
        .arg(format!(
            "@portwarden-test-{}-early-stop",
            std::process::id()
        ))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .arg("--unix-socket")
        .arg(dir.path().join("pw.sock"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    let pid = child.id();
    let caught: Vec<_> = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP]
        .into_iter()
        .filter(|&s| catches(pid, s))
        .collect();
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        caught,
        [libc::SIGTERM, libc::SIGINT, libc::SIGHUP],
        "handled at the first log line ({first})"
    );
    assert!(status.success(), "a clean stop: {status:?}");
}
