//! A stopped process is alive: an owner under SIGSTOP keeps its port through every watchdog
//! pass, and a daemon that was itself stopped wakes up without reclaiming anything live.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{allocate, list, ChildDaemon};
use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::*;

struct Sleeper(Child);

impl Sleeper {
    fn spawn() -> Self {
        Self(
            Command::new("sleep")
                .arg("600")
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn sleep"),
        )
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

async fn passes(d: &ChildDaemon) -> u64 {
    let channel = portwarden_client::connect(&portwarden_client::Target::Unix(d.socket.clone()))
        .await
        .unwrap();
    WatchdogServiceClient::new(channel)
        .status(WatchdogStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .checks_performed
}

async fn allocate_for(
    c: &mut ports_service_client::PortsServiceClient<tonic::transport::Channel>,
    service: &str,
    pid: i32,
    ttl_seconds: Option<u64>,
) -> u32 {
    allocate(
        c,
        AllocateRequest {
            service: service.into(),
            pid: Some(pid),
            ttl_seconds,
            ..Default::default()
        },
    )
    .await
    .port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_under_sigstop_keeps_its_port_through_every_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29060-29065", &["--quarantine", "0s"]);
    let owner = Sleeper::spawn();
    let mut c = d.tcp().await;
    let port = allocate_for(&mut c, "stopped-owner", owner.pid(), None).await;

    signal(owner.pid(), libc::SIGSTOP);
    let before = passes(&d).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = passes(&d).await;
    assert!(
        after >= before + 10,
        "the watchdog ran passes meanwhile ({before} -> {after})"
    );
    let held = list(&mut c).await;
    assert_eq!(held.len(), 1, "a stopped owner keeps its port: {held:?}");
    assert_eq!(held[0].port, port);
    assert_ne!(held[0].health(), Health::Dead);
    signal(owner.pid(), libc::SIGCONT);
    assert!(
        !d.log().contains("Reclaimed"),
        "nothing reclaimed:\n{}",
        d.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_woken_from_sigstop_reclaims_nothing_live() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29066-29071", &["--quarantine", "0s"]);
    let owner = Sleeper::spawn();
    let mut c = d.tcp().await;
    allocate_for(&mut c, "kept-by-process", owner.pid(), None).await;
    allocate_for(&mut c, "kept-by-both", owner.pid(), Some(600)).await;

    let daemon_pid = d.child.id() as i32;
    signal(daemon_pid, libc::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(5)).await;
    signal(daemon_pid, libc::SIGCONT);
    let before = passes(&d).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        passes(&d).await > before,
        "the watchdog runs again after the stop"
    );
    let mut services: Vec<String> = list(&mut c).await.into_iter().map(|a| a.service).collect();
    services.sort();
    assert_eq!(services, ["kept-by-both", "kept-by-process"]);
    assert!(
        !d.log().contains("Reclaimed"),
        "nothing reclaimed:\n{}",
        d.log()
    );
}
