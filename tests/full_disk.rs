//! A full disk is said, not hidden: while the state cannot be written the ports service's
//! health is NOT_SERVING, the state_storage check is critical, allocations are refused as
//! UNAVAILABLE (not INTERNAL) and change nothing; once space returns, all of it recovers by
//! itself. The daemon runs in a mount namespace of its own, on a small tmpfs.

mod common;

use std::process::Command;
use std::time::Duration;

use common::eventually;
use portwarden_client::proto::network_service_client::NetworkServiceClient;
use portwarden_client::proto::*;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn in_namespace(pid: u32, script: &str) -> bool {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "sh", "-c", script])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_recovered_from() {
    if !common::can_unshare() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let (child, addr) = common::serve_in_mount_namespace(
        &format!("mount -t tmpfs -o size=3m tmpfs {}", state.display()),
        &state.join("state.db"),
        "30500-30509",
        &[],
    );
    let pid = child.0.id();
    let channel = common::connect_tcp(addr).await;
    let mut ports = ports_service_client::PortsServiceClient::new(channel.clone());
    let health = HealthClient::new(channel.clone());
    let serving = |health: &mut HealthClient<tonic::transport::Channel>| {
        let mut h = health.clone();
        async move {
            h.check(HealthCheckRequest {
                service: "portwarden.v1.PortsService".into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1)
        }
    };
    ports
        .allocate(AllocateRequest {
            service: "before".into(),
            ..Default::default()
        })
        .await
        .expect("writes work");

    // Fill the filesystem.
    assert!(in_namespace(
        pid,
        &format!(
            "dd if=/dev/zero of={}/fill bs=64k 2>/dev/null; true",
            state.display()
        )
    ));
    let mut refused = None;
    for i in 0..200 {
        match ports
            .allocate(AllocateRequest {
                service: format!("s{i}"),
                labels: (0..16)
                    .map(|k| (format!("k{k}"), "v".repeat(200)))
                    .collect(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                let a = r.into_inner();
                let _ = ports
                    .release(ReleaseRequest {
                        port: a.allocation.unwrap().port,
                        lease_token: a.lease_token,
                    })
                    .await;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a write fails on a full disk");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("cannot be written"), "{}", e.message());
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut h = health.clone();
            async move { serving(&mut h).await == 2 }
        })
        .await,
        "NOT_SERVING while writes fail"
    );
    let report = NetworkServiceClient::new(channel.clone())
        .health(HealthRequest { port: None })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    let storage = report
        .checks
        .iter()
        .find(|c| c.name == "state_storage")
        .expect("a state_storage check");
    assert_eq!(storage.status, CheckStatus::Critical as i32, "{storage:?}");

    // Space returns: the daemon notices by itself.
    assert!(in_namespace(
        pid,
        &format!("rm -f {}/fill", state.display())
    ));
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut h = health.clone();
            async move { serving(&mut h).await == 1 }
        })
        .await,
        "SERVING again"
    );
    ports
        .allocate(AllocateRequest {
            service: "after".into(),
            ..Default::default()
        })
        .await
        .expect("writes work again");
}
