//! The event log through Watch: resume exactly where a watcher left off (also across a restart),
//! compaction answered OUT_OF_RANGE, snapshot + live with no gap and no duplicate, hundreds of
//! watchers with one stalled, shutdown with open streams, and a kill -9 mid-storm after which
//! the log and the allocations agree.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::{
    allocate, churn, events_until, eventually, list, next_event, watch, ChildDaemon, TestDaemon,
};
use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
use portwarden_client::proto::*;
use tonic::transport::Channel;

fn changes() -> Vec<i32> {
    vec![EventKind::Allocated as i32, EventKind::Released as i32]
}

async fn watchdog_status(channel: Channel) -> WatchdogStatusResponse {
    WatchdogServiceClient::new(channel)
        .status(WatchdogStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_watch_gets_exactly_the_missed_events_in_order() {
    let d = TestDaemon::start("29200-29204", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let mut first = watch(
        d.tcp_channel().await,
        WatchRequest {
            kinds: changes(),
            ..Default::default()
        },
    )
    .await;
    churn(&mut c, "a", 5).await;
    let read = events_until(&mut first, Duration::from_secs(5), |s| s.len() == 10).await;
    assert_eq!(read.len(), 10);
    let last = read.last().unwrap().sequence;
    drop(first);

    churn(&mut c, "b", 5).await;
    let mut resumed = watch(
        d.tcp_channel().await,
        WatchRequest {
            kinds: changes(),
            since_sequence: Some(last),
            ..Default::default()
        },
    )
    .await;
    let missed = events_until(&mut resumed, Duration::from_secs(5), |s| s.len() == 10).await;
    let services: Vec<&str> = missed.iter().map(|e| e.service.as_str()).collect();
    assert_eq!(
        services,
        ["b0", "b0", "b1", "b1", "b2", "b2", "b3", "b3", "b4", "b4"]
    );
    assert!(missed.iter().all(|e| e.sequence > last));
    assert!(missed.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(
        next_event(&mut resumed, Duration::from_millis(500)).await,
        None,
        "nothing more than what was missed"
    );
    // Live events follow the replay on the same stream.
    churn(&mut c, "c", 1).await;
    let live = events_until(&mut resumed, Duration::from_secs(5), |s| s.len() == 2).await;
    assert_eq!(live[0].service, "c0");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_across_a_daemon_restart_and_sequences_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let range = "29210-29214";
    let mut d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let mut c = d.tcp().await;
    churn(&mut c, "before", 3).await;
    let channel = common::connect_tcp(d.addr).await;
    let mut w = watch(
        channel,
        WatchRequest {
            kinds: changes(),
            since_sequence: Some(0),
            ..Default::default()
        },
    )
    .await;
    let before = events_until(&mut w, Duration::from_secs(5), |s| s.len() == 6).await;
    let last = before.last().unwrap().sequence;
    assert!(d.terminate().success());

    let d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let mut c = d.tcp().await;
    churn(&mut c, "after", 2).await;
    let mut w = watch(
        common::connect_tcp(d.addr).await,
        WatchRequest {
            kinds: changes(),
            since_sequence: Some(last),
            ..Default::default()
        },
    )
    .await;
    let after = events_until(&mut w, Duration::from_secs(5), |s| s.len() == 4).await;
    let services: Vec<&str> = after.iter().map(|e| e.service.as_str()).collect();
    assert_eq!(services, ["after0", "after0", "after1", "after1"]);
    assert!(
        after[0].sequence > last,
        "sequences continue after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_compacted_position_is_out_of_range_naming_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(
        dir.path(),
        "29220-29224",
        &["--events-keep", "5", "--quarantine", "0s"],
    );
    let mut c = d.tcp().await;
    churn(&mut c, "x", 10).await;
    let channel = common::connect_tcp(d.addr).await;
    // The next pass compacts the log down to its newest 5 events.
    assert!(
        eventually(Duration::from_secs(5), || {
            let ch = channel.clone();
            async move { watchdog_status(ch).await.oldest_retained_sequence > 10 }
        })
        .await
    );
    let status = watchdog_status(channel.clone()).await;
    let err = WatchdogServiceClient::new(channel)
        .watch(WatchRequest {
            since_sequence: Some(1),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    let oldest = status.oldest_retained_sequence;
    assert!(
        err.message().contains(&(oldest - 1).to_string())
            || err.message().contains(&oldest.to_string()),
        "the message names where to resume: {} (oldest {oldest})",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_watch_sees_every_allocation_once_while_another_client_allocates() {
    const N: usize = 60;
    let d = TestDaemon::start("29300-29399", Duration::ZERO).await;
    let mut c = d.tcp().await;
    for i in 0..N / 2 {
        allocate(
            &mut c,
            AllocateRequest {
                service: format!("early{i}"),
                ..Default::default()
            },
        )
        .await;
    }
    let mut writer = d.tcp().await;
    let storm = tokio::spawn(async move {
        for i in 0..N / 2 {
            allocate(
                &mut writer,
                AllocateRequest {
                    service: format!("late{i}"),
                    ..Default::default()
                },
            )
            .await;
        }
    });
    let mut stream = watch(
        d.tcp_channel().await,
        WatchRequest {
            snapshot: true,
            kinds: vec![EventKind::Allocated as i32],
            ..Default::default()
        },
    )
    .await;
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let mut complete = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < N && Instant::now() < deadline {
        let r = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        if let Some(a) = r.existing {
            assert!(!complete, "snapshot items come before the marker");
            *seen.entry(a.port).or_default() += 1;
        } else if r.snapshot_complete {
            complete = true;
        } else if let Some(e) = r.event {
            assert!(complete, "events come after the snapshot");
            *seen.entry(e.port).or_default() += 1;
        }
    }
    storm.await.unwrap();
    assert_eq!(seen.len(), N, "every allocation seen");
    assert!(seen.values().all(|n| *n == 1), "exactly once: {seen:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_watchers_get_every_event_in_order_and_a_stalled_one_is_ended() {
    const WATCHERS: usize = 200;
    const BATCH: usize = 100;
    const MAX_ROUNDS: usize = 5000;
    let d = TestDaemon::start("29400-29409", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let req = || WatchRequest {
        kinds: changes(),
        ..Default::default()
    };
    // The stalled watcher has its own connection (it must not hold others' flow control),
    // with HTTP/2's smallest windows, as a client that never reads ends up with.
    let small_windows = tonic::transport::Endpoint::from_shared(format!("http://{}", d.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let stalled = watch(small_windows, req()).await;
    let mut readers = Vec::new();
    let mut channels = Vec::new();
    for i in 0..WATCHERS {
        if i % 50 == 0 {
            channels.push(d.tcp_channel().await);
        }
        let mut stream = watch(channels.last().unwrap().clone(), req()).await;
        readers.push(tokio::spawn(async move {
            // Everything up to the release of "end0".
            let seen = events_until(&mut stream, Duration::from_secs(120), |s| {
                s.last()
                    .is_some_and(|e| e.service == "end0" && e.kind == EventKind::Released as i32)
            })
            .await;
            (
                seen.iter().map(|e| e.sequence).collect::<Vec<u64>>(),
                stream,
            )
        }));
    }
    let status = watchdog_status(d.tcp_channel().await).await;
    assert_eq!(status.subscribers as usize, WATCHERS + 1);

    // Churn until the stalled watcher has been ended (its queue and its connection's buffers
    // full), then once more so the readers see the end marker.
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        churn(&mut c, "s", BATCH).await;
        rounds += BATCH;
        let n = watchdog_status(d.tcp_channel().await).await.subscribers as usize;
        if n <= WATCHERS {
            break;
        }
    }
    assert!(rounds < MAX_ROUNDS, "the stalled watcher was ended");
    churn(&mut c, "end", 1).await;
    let rounds_events = 2 * rounds;
    let mut first: Option<Vec<u64>> = None;
    let mut streams = Vec::new();
    for r in readers {
        let (seqs, stream) = r.await.unwrap();
        streams.push(stream);
        // The churn's events, plus "end"'s (the stream may carry no earlier events).
        let churned = seqs.len() - 2;
        assert_eq!(churned, rounds_events, "every event reached every watcher");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
        match &first {
            None => first = Some(seqs),
            Some(f) => assert_eq!(f, &seqs),
        }
    }
    let status = watchdog_status(d.tcp_channel().await).await;
    assert_eq!(status.subscribers as usize, WATCHERS, "{status:?}");
    drop(streams);
    drop(channels);
    drop(stalled);
    let ch = d.tcp_channel().await;
    assert!(
        eventually(Duration::from_secs(5), || {
            let ch = ch.clone();
            async move { watchdog_status(ch).await.subscribers == 0 }
        })
        .await,
        "every watcher that left is gone"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_watches_exits_within_two_seconds_and_streams_end_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ChildDaemon::spawn(dir.path(), "29410-29411", &[]);
    let channel = common::connect_tcp(d.addr).await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(watch(channel.clone(), WatchRequest::default()).await);
    }
    let t = Instant::now();
    let status = d.terminate();
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(2), "exited in {took:?}");
    for mut s in streams {
        // Drain what was sent; the stream ends with an OK status, not an error.
        loop {
            match tokio::time::timeout(Duration::from_secs(2), s.message()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => break,
                other => panic!("a clean end, got {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_storm_the_event_log_and_the_allocations_agree() {
    let dir = tempfile::tempdir().unwrap();
    let range = "29500-29599";
    let mut d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut c = d.tcp().await;
        let acked = acked.clone();
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let Ok(r) = c
                    .allocate(AllocateRequest {
                        service: format!("w{w}-{i}"),
                        ..Default::default()
                    })
                    .await
                else {
                    return;
                };
                let port = r.get_ref().allocation.as_ref().unwrap().port;
                acked.lock().unwrap().insert(port);
                if i % 2 == 0 {
                    let token = r.into_inner().lease_token;
                    let released = c
                        .release(ReleaseRequest {
                            port,
                            lease_token: token,
                        })
                        .await;
                    // A release whose answer was lost to the kill may or may not have
                    // committed: the port is then neither promised held nor released.
                    acked.lock().unwrap().remove(&port);
                    if released.is_err() {
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    d.kill9();
    for w in workers {
        let _ = w.await;
    }
    let d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let mut c = d.tcp().await;
    let held: BTreeSet<u32> = list(&mut c).await.iter().map(|a| a.port).collect();
    // Replay the whole log: the allocations it implies are exactly the ones held.
    let mut all = watch(
        common::connect_tcp(d.addr).await,
        WatchRequest {
            since_sequence: Some(0),
            kinds: vec![
                EventKind::Allocated as i32,
                EventKind::Released as i32,
                EventKind::Reclaimed as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    let mut implied = BTreeSet::new();
    let mut n = 0;
    while let Some(e) = next_event(&mut all, Duration::from_millis(700)).await {
        n += 1;
        if e.kind == EventKind::Allocated as i32 {
            assert!(
                implied.insert(e.port),
                "allocated twice without release: {e:?}"
            );
        } else {
            assert!(
                implied.remove(&e.port),
                "released what was not allocated: {e:?}"
            );
        }
    }
    assert!(n > 10, "the storm made events ({n})");
    assert_eq!(implied, held, "the log and the state agree");
    // Every acknowledged allocation not released is held (and so has its allocated event).
    let acked = acked.lock().unwrap().clone();
    assert!(acked.is_subset(&held), "acked {acked:?} held {held:?}");
}
