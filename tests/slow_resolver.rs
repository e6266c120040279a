//! A resolver that never answers must not stall the daemon: the network snapshot that an
//! allocation retakes after an idle spell (it includes DNS lookups, cut off at the DNS timeout)
//! is taken off the async workers, so other clients' calls go on meanwhile. The daemon runs in a
//! mount namespace of its own whose /etc/hosts lacks the host name and whose resolver is a UDP
//! socket of this test that never replies.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use portwarden_client::proto::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_that_never_answers_stalls_no_other_client() {
    if !common::can_unshare() {
        return;
    }
    // The silent resolver: bound, never read.
    let Ok(_silent) = UdpSocket::bind("127.0.0.53:53") else {
        eprintln!("127.0.0.53:53 is taken here: skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.53\noptions timeout:5 attempts:2\n",
    )
    .unwrap();
    let (_daemon, addr) = common::serve_in_mount_namespace(
        &format!(
            "mount --bind {} /etc/hosts && mount --bind {} /etc/resolv.conf",
            hosts.display(),
            resolv.display()
        ),
        &dir.path().join("state.db"),
        "30600-30620",
        // No pass refreshes the snapshot meanwhile: allocations must retake it.
        &["--watchdog-interval", "1h"],
    );
    let mut allocator_client =
        ports_service_client::PortsServiceClient::new(common::connect_tcp(addr).await);
    let mut other = ports_service_client::PortsServiceClient::new(common::connect_tcp(addr).await);
    // Past the snapshot's 5 s life: the next allocation retakes it, DNS and all.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let slow = tokio::spawn(async move {
        let t = Instant::now();
        let r = allocator_client
            .allocate(AllocateRequest {
                service: "waits".into(),
                ..Default::default()
            })
            .await;
        (r.is_ok(), t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Meanwhile, another client's calls are answered at once.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        other.list(ListRequest::default()).await.unwrap();
        other.status(StatusRequest {}).await.unwrap();
        worst = worst.max(t.elapsed());
    }
    let (ok, took) = slow.await.unwrap();
    eprintln!("allocation with a fresh snapshot: {took:?}; worst other call: {worst:?}");
    assert!(ok, "the allocation itself succeeds");
    assert!(
        took < Duration::from_secs(3),
        "cut off at the DNS timeout: {took:?}"
    );
    assert!(
        worst < Duration::from_millis(200),
        "another client waited {worst:?} while the snapshot was retaken ({took:?})"
    );
}
