//! The life of an allocation against a real daemon: allocate, list, release, quarantine, reuse,
//! sticky ports, owners that die, ports held by other processes.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{eventually, TestDaemon};
use portwarden_client::proto::*;
use tonic::Code;
use tonic_types::StatusExt;

fn alloc(service: &str) -> AllocateRequest {
    AllocateRequest {
        service: service.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocate_list_release_quarantine_then_reuse() {
    let d = TestDaemon::start("21000-21002", Duration::from_millis(1500)).await;
    let mut c = d.tcp().await;
    let a = c
        .allocate(AllocateRequest {
            service: "grace_backend".into(),
            purpose: "Main Grace API server".into(),
            started_by: "serve.py".into(),
            labels: [("env".to_string(), "test".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got = a.allocation.unwrap();
    assert_eq!(
        got.port, 21000,
        "least recently used (never used, lowest) first"
    );
    assert_eq!(got.purpose, "Main Grace API server");
    assert_eq!(got.started_by, "serve.py");
    assert_eq!(got.labels.get("env").map(String::as_str), Some("test"));
    assert_eq!(got.health, Health::Allocated as i32);
    assert_eq!(a.lease_token.len(), 32);

    let list = common::list(&mut c).await;
    assert_eq!(list.iter().map(|a| a.port).collect::<Vec<_>>(), [21000]);

    let rel = c
        .release(ReleaseRequest {
            port: 21000,
            lease_token: a.lease_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rel.quarantined_until.is_some());
    assert!(common::list(&mut c).await.is_empty());

    // Another service gets the other ports first, then is refused while 21000 rests.
    let b = common::allocate(&mut c, alloc("other")).await;
    let e = common::allocate(&mut c, alloc("other2")).await;
    assert_eq!((b.port, e.port), (21001, 21002));
    let err = c
        .allocate(AllocateRequest {
            port: Some(21000),
            ..alloc("third")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("quarantined"), "{}", err.message());
    let err = c.allocate(alloc("third")).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);

    // After the quarantine it is handed out again.
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut c = c.clone();
            async move {
                c.allocate(alloc("third"))
                    .await
                    .is_ok_and(|r| r.into_inner().allocation.unwrap().port == 21000)
            }
        })
        .await
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_gets_its_sticky_port_back_even_during_quarantine() {
    let d = TestDaemon::start("21010-21019", Duration::from_secs(60)).await;
    let mut c = d.tcp().await;
    for s in ["a", "b", "c"] {
        c.allocate(alloc(s)).await.unwrap();
    }
    let b = c
        .get(GetRequest { port: 21011 })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap();
    assert_eq!(b.service, "b");
    c.allocate(alloc("d")).await.unwrap();
    // Release b over the Unix socket: same uid, no token needed.
    let mut u = d.unix().await;
    u.release(ReleaseRequest {
        port: 21011,
        lease_token: String::new(),
    })
    .await
    .unwrap();
    let again = common::allocate(&mut c, alloc("b")).await;
    assert_eq!(again.port, 21011, "sticky port comes back to its service");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_bound_by_another_process_is_never_handed_out() {
    let d = TestDaemon::start("21020-21024", Duration::ZERO).await;
    let mut c = d.tcp().await;
    // Another process (a real child, not us) listens on 21020 and 21022.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\nss=[]\nfor p in (21020,21022):\n s=socket.socket(); s.bind(('127.0.0.1',p)); s.listen(); ss.append(s)\nprint('ready',flush=True)\ntime.sleep(60)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");

    let mut got = Vec::new();
    for i in 0..5 {
        match c.allocate(alloc(&format!("s{i}"))).await {
            Ok(r) => got.push(r.into_inner().allocation.unwrap().port),
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                break;
            }
        }
    }
    got.sort();
    assert_eq!(got, [21021, 21023, 21024]);
    let err = c
        .allocate(AllocateRequest {
            port: Some(21020),
            ..alloc("want")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // The socket table and /proc name the holder.
    let holder_name = format!("pid {} (python3)", holder.id());
    assert!(err.message().contains(&holder_name), "{}", err.message());
    let info = err
        .get_error_details()
        .resource_info()
        .cloned()
        .expect("ResourceInfo");
    assert_eq!(info.owner, holder_name);

    let check = c
        .check_ports(CheckPortsRequest {
            ports: vec![21020, 21021, 21022],
        })
        .await
        .unwrap()
        .into_inner();
    let states: Vec<i32> = check.results.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            PortState::InUse as i32,
            PortState::Allocated as i32,
            PortState::InUse as i32
        ]
    );
    let _ = holder.kill();
    let _ = holder.wait();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_of_a_process_that_exited_is_reclaimed() {
    let d = TestDaemon::start("21030-21031", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut owner = Command::new("sleep").arg("60").spawn().unwrap();
    let a = common::allocate(
        &mut c,
        AllocateRequest {
            pid: Some(owner.id() as i32),
            ..alloc("worker")
        },
    )
    .await;
    assert_eq!(a.owner_kind, OwnerKind::Process as i32);
    assert!(a.pid_start_time > Some(0));
    // Alive: still held after a few sweeps.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(c.get(GetRequest { port: a.port }).await.is_ok());

    owner.kill().unwrap();
    owner.wait().unwrap();
    let port = a.port;
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut c = c.clone();
            async move {
                c.get(GetRequest { port })
                    .await
                    .is_err_and(|e| e.code() == Code::NotFound)
            }
        })
        .await,
        "the sweeper reclaims the port of an exited process"
    );
    let again = c
        .allocate(AllocateRequest {
            port: Some(port),
            ..alloc("next")
        })
        .await
        .unwrap();
    assert_eq!(again.into_inner().allocation.unwrap().service, "next");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_lease_lives_while_renewed_and_dies_when_not() {
    let d = TestDaemon::start("21040-21041", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let r = c
        .allocate(AllocateRequest {
            ttl_seconds: Some(2),
            ..alloc("leased")
        })
        .await
        .unwrap()
        .into_inner();
    let a = r.allocation.unwrap();
    assert_eq!(a.owner_kind, OwnerKind::Lease as i32);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let renewed = c
            .renew(RenewRequest {
                port: a.port,
                lease_token: r.lease_token.clone(),
                requests_delta: 5,
                errors_delta: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .allocation
            .unwrap();
        assert!(renewed.renewed_at.is_some());
    }
    let got = c
        .get(GetRequest { port: a.port })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap();
    assert_eq!((got.request_count, got.error_count), (15, 3));
    let port = a.port;
    assert!(
        eventually(Duration::from_secs(6), || {
            let mut c = c.clone();
            async move { c.get(GetRequest { port }).await.is_err() }
        })
        .await,
        "an unrenewed lease expires and is reclaimed"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_even_for_the_owner() {
    let d = TestDaemon::start("21050-21051", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let r = c.allocate(alloc("guarded")).await.unwrap().into_inner();
    let port = r.allocation.unwrap().port;
    for token in ["0123456789abcdef0123456789abcdef", "short"] {
        let e = c
            .release(ReleaseRequest {
                port,
                lease_token: token.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "token {token:?}: {e:?}");
        let e = c
            .renew(RenewRequest {
                port,
                lease_token: token.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    assert!(
        c.get(GetRequest { port }).await.is_ok(),
        "a refused release changes nothing"
    );
    c.release(ReleaseRequest {
        port,
        lease_token: r.lease_token,
    })
    .await
    .unwrap();
    assert_eq!(
        c.get(GetRequest { port }).await.unwrap_err().code(),
        Code::NotFound
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_is_the_caller_over_the_unix_socket() {
    let d = TestDaemon::start("21060-21061", Duration::ZERO).await;
    let mut u = d.unix().await;
    let a = common::allocate(
        &mut u,
        AllocateRequest {
            owner_is_caller: true,
            ..alloc("self")
        },
    )
    .await;
    assert_eq!(
        a.pid,
        Some(std::process::id() as i32),
        "SO_PEERCRED names this test process"
    );
    assert_eq!(a.owner_uid, Some(unsafe { libc::geteuid() }));
    let mut c = d.tcp().await;
    let e = c
        .allocate(AllocateRequest {
            owner_is_caller: true,
            ..alloc("remote")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_what_is_held_resting_and_unavailable() {
    let d = TestDaemon::start("21070-21074", Duration::from_secs(60)).await;
    let mut c = d.tcp().await;
    let _busy = TcpListener::bind("0.0.0.0:21074").unwrap();
    let r = c.allocate(alloc("a")).await.unwrap().into_inner();
    c.allocate(alloc("b")).await.unwrap();
    c.release(ReleaseRequest {
        port: r.allocation.unwrap().port,
        lease_token: r.lease_token,
    })
    .await
    .unwrap();
    // The listener is seen in the socket table within a sweep (1 s); nothing is probed per call.
    let counts = |s: portwarden_client::proto::StatusResponse| {
        (
            s.total,
            s.allocated,
            s.quarantined,
            s.unavailable,
            s.available,
        )
    };
    let want = (5, 1, 1, 1, 2);
    let seen = eventually(Duration::from_secs(3), || {
        let mut c = c.clone();
        async move { counts(c.status(StatusRequest {}).await.unwrap().into_inner()) == want }
    })
    .await;
    let s = c.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(seen, "status {:?}, want {want:?}", counts(s));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_owner_listening_and_stopping() {
    let d = TestDaemon::start("21080-21081", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let a = common::allocate(&mut c, alloc("web")).await;
    assert_eq!(a.health, Health::Allocated as i32);
    let port = a.port;
    let health_is = |want: Health| {
        let c = c.clone();
        async move {
            eventually(Duration::from_secs(5), || {
                let mut c = c.clone();
                async move {
                    c.get(GetRequest { port }).await.is_ok_and(|r| {
                        r.into_inner()
                            .allocation
                            .is_some_and(|a| a.health == want as i32)
                    })
                }
            })
            .await
        }
    };
    let server = TcpListener::bind(("0.0.0.0", port as u16)).unwrap();
    assert!(
        health_is(Health::Active).await,
        "the owner listening makes it active"
    );
    drop(server);
    assert!(
        health_is(Health::Unhealthy).await,
        "an active port that stops listening is unhealthy"
    );
    d.stop().await;
}
