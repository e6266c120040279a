//! The watchdog with real processes and sockets: dead owners come back by themselves, leases
//! expire, squatters and CLOSE_WAIT leaks are seen (counted like `ss`), outside listeners on free
//! ports are reported, and every change reaches a watcher in sequence order.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{allocate, events_until, eventually, list, watch, Owner, TestDaemon};
use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::*;

fn kinds(k: &[EventKind]) -> Vec<i32> {
    k.iter().map(|k| *k as i32).collect()
}

/// A Watch of these kinds of event only.
async fn watch_kinds(d: &TestDaemon, k: &[EventKind]) -> tonic::Streaming<WatchResponse> {
    watch(
        d.tcp_channel().await,
        WatchRequest {
            kinds: kinds(k),
            ..Default::default()
        },
    )
    .await
}

/// Allocates a port owned by `owner`'s process, which then starts on it.
async fn allocate_for(
    c: &mut ports_service_client::PortsServiceClient<tonic::transport::Channel>,
    service: &str,
    owner: &mut Owner,
) -> Allocation {
    let a = allocate(
        c,
        AllocateRequest {
            service: service.into(),
            pid: Some(owner.pid()),
            ..Default::default()
        },
    )
    .await;
    owner.start_on(a.port);
    a
}

async fn get(
    c: &mut ports_service_client::PortsServiceClient<tonic::transport::Channel>,
    port: u32,
) -> Allocation {
    c.get(GetRequest { port })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_is_reclaimed_within_a_reaper_tick_and_watchers_see_it_in_order() {
    let d = TestDaemon::start("29100-29104", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut events = watch_kinds(
        &d,
        &[
            EventKind::Allocated,
            EventKind::HealthChanged,
            EventKind::Reclaimed,
        ],
    )
    .await;
    let mut owner = Owner::spawn(true, false);
    let a = allocate_for(&mut c, "web", &mut owner).await;
    let active = events_until(&mut events, Duration::from_secs(5), |seen| {
        seen.iter().any(|e| e.health == Health::Active as i32)
    })
    .await;
    assert_eq!(active[0].kind, EventKind::Allocated as i32, "{active:?}");

    owner.kill9();
    let killed = Instant::now();
    let after = events_until(&mut events, Duration::from_secs(5), |seen| {
        seen.iter().any(|e| e.kind == EventKind::Reclaimed as i32)
    })
    .await;
    let took = killed.elapsed();
    let reclaimed = after.last().expect("a reclaimed event");
    assert_eq!(reclaimed.kind, EventKind::Reclaimed as i32, "{after:?}");
    assert_eq!(reclaimed.reason, "owner_exited");
    assert_eq!(reclaimed.port, a.port);
    assert!(
        took < Duration::from_millis(2500),
        "reclaimed within one reaper tick (1 s) and the watch's delivery: took {took:?}"
    );
    let all: Vec<&WatchdogEvent> = active.iter().chain(after.iter()).collect();
    assert!(
        all.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "in sequence order: {all:?}"
    );
    assert!(list(&mut c).await.is_empty());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_not_renewed_is_reclaimed_and_one_renewed_in_time_stays() {
    let d = TestDaemon::start("29110-29114", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let lease = |service: &str| AllocateRequest {
        service: service.into(),
        ttl_seconds: Some(2),
        ..Default::default()
    };
    let kept = c.allocate(lease("kept")).await.unwrap().into_inner();
    let lapsed = c.allocate(lease("lapsed")).await.unwrap().into_inner();
    let kept_port = kept.allocation.as_ref().unwrap().port;
    let lapsed_port = lapsed.allocation.as_ref().unwrap().port;
    let deadline = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < deadline {
        c.renew(RenewRequest {
            port: kept_port,
            lease_token: kept.lease_token.clone(),
            ..Default::default()
        })
        .await
        .expect("renewed in time");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let held: Vec<u32> = list(&mut c).await.iter().map(|a| a.port).collect();
    assert_eq!(held, [kept_port]);
    let history = WatchdogServiceClient::new(d.tcp_channel().await)
        .history(HistoryRequest {
            port: Some(lapsed_port),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history[0].kind, EventKind::Reclaimed as i32, "{history:?}");
    assert_eq!(history[0].reason, "lease_expired");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatter_makes_the_port_unhealthy_and_its_leaving_is_seen() {
    let d = TestDaemon::start("29120-29124", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut events = watch_kinds(
        &d,
        &[
            EventKind::SquatterSeen,
            EventKind::SquatterGone,
            EventKind::HealthChanged,
        ],
    )
    .await;
    // The owner runs but does not listen; this test process takes the port instead.
    let mut owner = Owner::spawn(false, false);
    let a = allocate_for(&mut c, "api", &mut owner).await;
    let squatter = TcpListener::bind(("0.0.0.0", a.port as u16)).unwrap();
    let seen = events_until(&mut events, Duration::from_secs(5), |s| {
        s.iter().any(|e| e.kind == EventKind::SquatterSeen as i32)
            && s.iter().any(|e| e.health == Health::Unhealthy as i32)
    })
    .await;
    let event = seen
        .iter()
        .find(|e| e.kind == EventKind::SquatterSeen as i32)
        .unwrap_or_else(|| panic!("a squatter event: {seen:?}"));
    let me = std::process::id();
    assert!(
        event.message.contains(&format!("pid {me}")),
        "the squatter is named: {}",
        event.message
    );
    let observed = get(&mut c, a.port).await.observed.expect("observed");
    assert_eq!(observed.listener, "squatter");

    drop(squatter);
    let gone = events_until(&mut events, Duration::from_secs(5), |s| {
        s.iter().any(|e| e.kind == EventKind::SquatterGone as i32)
            && s.iter().any(|e| e.health == Health::Allocated as i32)
    })
    .await;
    assert!(
        gone.iter()
            .any(|e| e.kind == EventKind::SquatterGone as i32),
        "{gone:?}"
    );
    assert_eq!(get(&mut c, a.port).await.health, Health::Allocated as i32);
    d.stop().await;
}

/// CLOSE_WAIT sockets whose local port is `port`, as `ss` counts them.
fn ss_close_wait(port: u32) -> usize {
    let out = Command::new("ss")
        .args([
            "-Htan",
            "state",
            "close-wait",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("run ss");
    assert!(out.status.success(), "ss: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wait_build_up_is_counted_like_ss_and_reported() {
    let d = TestDaemon::start("29130-29134", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut events = watch_kinds(&d, &[EventKind::ConnectionsLeaking]).await;
    // A server that accepts and never closes what it accepted.
    let mut owner = Owner::spawn(true, true);
    let a = allocate_for(&mut c, "leaky", &mut owner).await;
    // Let one pass see the port before the leak, so growth is measured from zero.
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut c = c.clone();
            async move { get(&mut c, a.port).await.observed.is_some() }
        })
        .await
    );
    const PEERS: usize = 7;
    let peers: Vec<TcpStream> = (0..PEERS)
        .map(|_| TcpStream::connect(("127.0.0.1", a.port as u16)).unwrap())
        .collect();
    // The peers close; the server never does: its ends sit in CLOSE_WAIT.
    drop(peers);
    assert!(
        eventually(Duration::from_secs(5), || async {
            ss_close_wait(a.port) == PEERS
        })
        .await,
        "ss sees {} CLOSE_WAIT sockets",
        ss_close_wait(a.port)
    );
    let leak = events_until(&mut events, Duration::from_secs(5), |s| {
        s.iter().any(|e| {
            e.details
                .as_ref()
                .and_then(|d| d.fields.get("close_wait"))
                .and_then(|v| match v.kind {
                    Some(prost_types::value::Kind::NumberValue(n)) => Some(n as usize),
                    _ => None,
                })
                == Some(PEERS)
        })
    })
    .await;
    assert!(!leak.is_empty(), "a connections_leaking event");
    assert!(leak.iter().all(|e| e.port == a.port));
    let observed = get(&mut c, a.port).await.observed.expect("observed");
    assert_eq!(
        observed.connections.get("CLOSE_WAIT").copied(),
        Some(ss_close_wait(a.port) as u64),
        "equal to ss: {observed:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_listener_on_a_free_port_is_reported_once_and_never_handed_out() {
    let d = TestDaemon::start("29140-29141", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut events = watch_kinds(
        &d,
        &[
            EventKind::OutsideListenerSeen,
            EventKind::OutsideListenerGone,
        ],
    )
    .await;
    let outsider = TcpListener::bind("0.0.0.0:29141").unwrap();
    let seen = events_until(&mut events, Duration::from_secs(5), |s| !s.is_empty()).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].port, 29141);
    assert!(seen[0]
        .message
        .contains(&format!("pid {}", std::process::id())));
    // Several passes later, still one report.
    let more = events_until(&mut events, Duration::from_millis(800), |_| false).await;
    assert!(more.is_empty(), "reported once: {more:?}");
    for i in 0..2 {
        let got = c
            .allocate(AllocateRequest {
                service: format!("s{i}"),
                ..Default::default()
            })
            .await;
        if let Ok(r) = got {
            assert_ne!(r.into_inner().allocation.unwrap().port, 29141);
        }
    }
    drop(outsider);
    let _ = c
        .release(ReleaseRequest {
            port: 29140,
            ..Default::default()
        })
        .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_list_show_the_owner_process_and_status_counts_passes() {
    let d = TestDaemon::start("29150-29151", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut owner = Owner::spawn(true, false);
    let a = allocate_for(&mut c, "py", &mut owner).await;
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut c = c.clone();
            async move {
                get(&mut c, a.port)
                    .await
                    .observed
                    .is_some_and(|o| o.listener == "owner")
            }
        })
        .await
    );
    let observed = get(&mut c, a.port).await.observed.unwrap();
    let process = observed.process.expect("the owner's process");
    assert!(process.name.starts_with("python"), "{process:?}");
    assert!(process.cmdline.contains("socket"), "{process:?}");
    assert!(process.rss_bytes > 1_000_000, "{process:?}");
    let listed = list(&mut c).await;
    assert!(listed[0]
        .observed
        .as_ref()
        .is_some_and(|o| o.process.is_some()));

    let status = WatchdogServiceClient::new(d.tcp_channel().await)
        .status(WatchdogStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.running);
    assert_eq!(status.interval_ms, 200);
    assert!(status.checks_performed >= 1, "{status:?}");
    assert!(status.last_run.is_some());
    assert!(status.last_sequence >= 2);
    assert_eq!(status.oldest_retained_sequence, 1);
    d.stop().await;
}
