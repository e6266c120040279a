//! One local user must not stall everyone's allocations with diagnostics: an unprivileged
//! account of the test's own keeps 1,024 CheckPorts calls of 1,024 ports each in flight over
//! loopback TCP. It gets a few at a time and RESOURCE_EXHAUSTED for the rest, the daemon does
//! not grow hundreds of threads, and root's allocations, each of which must first retake the
//! network snapshot (it is kept 1 s here), stay fast.

mod common;

#[path = "support/attacker.rs"]
mod attacker;

use std::time::{Duration, Instant};

use attacker::Attacker;
use common::ChildDaemon;
use portwarden_client::proto::*;

const ROLE: &str = "attacker_role_flood_check_ports";

/// Run by `run_role` as the attacker: 16 connections x 64 callers asking CheckPorts in a loop
/// for `SECONDS`, then says how many were answered and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_role_flood_check_ports() {
    if !attacker::is_role(ROLE) {
        return;
    }
    let target =
        portwarden_client::Target::Tcp(format!("http://{}", std::env::var("TARGET").unwrap()));
    let seconds: u64 = std::env::var("SECONDS").unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let ports: Vec<u32> = (41000..42024).collect();
    let mut callers = Vec::new();
    for _ in 0..16 {
        let Ok(channel) = portwarden_client::connect(&target).await else {
            continue;
        };
        for _ in 0..64 {
            let mut c = ports_service_client::PortsServiceClient::new(channel.clone());
            let ports = ports.clone();
            callers.push(tokio::spawn(async move {
                let (mut ok, mut refused, mut message) = (0u64, 0u64, String::new());
                while Instant::now() < deadline {
                    let asked = c.check_ports(CheckPortsRequest {
                        ports: ports.clone(),
                    });
                    match tokio::time::timeout(Duration::from_secs(10), asked).await {
                        Ok(Ok(_)) => ok += 1,
                        Ok(Err(s)) if s.code() == tonic::Code::ResourceExhausted => {
                            refused += 1;
                            message = s.message().to_string();
                            // Asks again soon: 1,024 calls stay about in flight.
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                (ok, refused, message)
            }));
        }
    }
    let (mut ok, mut refused, mut message) = (0, 0, String::new());
    for c in callers {
        if let Ok((o, r, m)) = c.await {
            ok += o;
            refused += r;
            if !m.is_empty() {
                message = m;
            }
        }
    }
    println!("answered={ok} refused={refused} message={message}");
}

/// Threads of a process.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_check_ports_flood_does_not_stall_roots_allocations() {
    let Some(attacker) = Attacker::create("dia") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pw.toml");
    std::fs::write(
        &config,
        "[network.thresholds]\nsnapshot_max_age_ms = 1000\n",
    )
    .unwrap();
    let d = ChildDaemon::spawn(
        dir.path(),
        "32300-32319",
        &[
            "--quarantine",
            "0s",
            "--watchdog-interval",
            "60s",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let pid = d.child.id();
    let mut c = d.unix().await;
    let allocate_once = |c: &mut ports_service_client::PortsServiceClient<_>, i: usize| {
        let req = AllocateRequest {
            service: format!("root{i}"),
            ..Default::default()
        };
        let mut c = c.clone();
        async move {
            let t = Instant::now();
            let r = c.allocate(req).await.expect("root allocates").into_inner();
            c.release(ReleaseRequest {
                port: r.allocation.unwrap().port,
                lease_token: r.lease_token,
            })
            .await
            .unwrap();
            t.elapsed()
        }
    };
    // Quiet: after the snapshot aged, an allocation retakes it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let quiet = allocate_once(&mut c, 0).await;

    let mut role = attacker.run_role(
        ROLE,
        &[("TARGET", d.addr.to_string()), ("SECONDS", "8".to_string())],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut slowest = Duration::ZERO;
    let mut most_threads = 0;
    for i in 1..=4 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        most_threads = most_threads.max(threads(pid));
        slowest = slowest.max(allocate_once(&mut c, i).await);
    }
    let line = attacker::role_says(&mut role, "answered=");
    eprintln!(
        "the attacker: {line}; root's allocation {quiet:?} quiet, at most {slowest:?} during; \
         the daemon ran at most {most_threads} threads"
    );
    // Queued behind the probes, it took tens of seconds; what is left is the CPU the flood's
    // own requests take (a debug build, on a machine the attacker shares).
    assert!(
        slowest < Duration::from_secs(3),
        "root's allocation took {slowest:?} during the flood ({quiet:?} without)"
    );
    assert!(
        most_threads < 48,
        "the daemon ran {most_threads} threads during the flood"
    );
    assert!(
        line.contains("diagnostics"),
        "the refusals name the limit: {line}"
    );
    assert!(
        d.wait_for_log("diagnostics refused").is_ok(),
        "the refusals are logged"
    );
}
