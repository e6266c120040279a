//! The watchdog's events as Server-Sent Events, over real HTTP/1.1 (TCP and the Unix socket),
//! as a browser's EventSource or `curl -N` reads them: live, resumed with Last-Event-ID, and a
//! reset when the position to resume from was compacted.

mod common;
#[path = "support/http.rs"]
mod http;
#[path = "support/sse.rs"]
mod sse;

use std::time::{Duration, Instant};

use common::ChildDaemon;
use http::{post_json, request, Addr};
use sse::{Sse, SseReader};

fn allocate(addr: &Addr, service: &str) -> (u64, String) {
    let r = post_json(
        addr,
        "/api/ports/allocations",
        &serde_json::json!({ "service": service }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["allocation"]["port"].as_u64().unwrap(),
        v["lease_token"].as_str().unwrap().to_string(),
    )
}

fn release(addr: &Addr, port: u64, token: &str) {
    let r = request(
        addr,
        "DELETE",
        &format!("/api/ports/allocations/{port}"),
        &[("X-Lease-Token", token)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn events_arrive_in_order_and_a_reconnect_resumes_with_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29850-29854", &["--quarantine", "0s"]);
    let tcp = Addr::Tcp(d.addr);
    let unix = Addr::Unix(d.socket.clone());
    let mut sse = SseReader::open(
        &tcp,
        "/api/ports/watchdog/events?kind=allocated,released",
        &[],
    );
    let (port, token) = allocate(&tcp, "web");
    release(&tcp, port, &token);
    let a = sse.next().unwrap();
    let r = sse.next().unwrap();
    assert_eq!(
        (a.event.as_str(), r.event.as_str()),
        ("allocated", "released")
    );
    let (ida, idr): (u64, u64) = (
        a.id.as_deref().unwrap().parse().unwrap(),
        r.id.as_deref().unwrap().parse().unwrap(),
    );
    assert!(ida < idr);
    let data = a.json();
    assert_eq!(
        data["sequence"].as_u64(),
        Some(ida),
        "data is the event's JSON: {data}"
    );
    assert_eq!(data["kind"], "allocated");
    assert_eq!(data["port"].as_u64(), Some(port));
    assert_eq!(data["allocation"]["service"], "web");
    assert!(
        data["allocation"].get("lease_token").is_none(),
        "no token in events"
    );
    drop(sse);

    // Missed while disconnected; then a reconnect over the Unix socket with Last-Event-ID.
    let (p2, t2) = allocate(&tcp, "api");
    release(&tcp, p2, &t2);
    let last = idr.to_string();
    let mut resumed = SseReader::open(
        &unix,
        "/api/ports/watchdog/events?kind=allocated,released",
        &[("Last-Event-ID", &last)],
    );
    let missed: Vec<Sse> = (0..2).map(|_| resumed.next().unwrap()).collect();
    assert_eq!(missed[0].json()["service"], "api");
    assert_eq!(missed[0].event, "allocated");
    assert_eq!(missed[1].event, "released");
    // And live ones after them, on the same stream.
    let (p3, _) = allocate(&tcp, "late");
    let live = resumed.next().unwrap();
    assert_eq!(live.json()["service"], "late");
    assert_eq!(live.json()["port"].as_u64(), Some(p3));
}

#[test]
fn a_compacted_position_gets_a_reset_then_live_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(
        dir.path(),
        "29860-29862",
        &["--quarantine", "0s", "--events-keep", "3"],
    );
    let tcp = Addr::Tcp(d.addr);
    for i in 0..5 {
        let (port, token) = allocate(&tcp, &format!("s{i}"));
        release(&tcp, port, &token);
    }
    // A pass compacts the log to its newest 3 events.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = http::get(&tcp, "/api/ports/watchdog/status").json();
        if w["oldest_retained_sequence"].as_u64().unwrap() > 3 {
            break;
        }
        assert!(Instant::now() < deadline, "compacted: {w}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut sse = SseReader::open(
        &tcp,
        "/api/ports/watchdog/events?since=1&kind=allocated",
        &[],
    );
    let reset = sse.next().unwrap();
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert!(reset.json()["message"]
        .as_str()
        .unwrap()
        .contains("compacted"));
    let (_, _) = allocate(&tcp, "after");
    let live = sse.next().unwrap();
    assert_eq!(live.event, "allocated");
    assert_eq!(live.json()["service"], "after");
}

#[test]
fn a_snapshot_stream_starts_with_the_current_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29870-29872", &["--quarantine", "0s"]);
    let tcp = Addr::Tcp(d.addr);
    let (port, _) = allocate(&tcp, "present");
    let mut sse = SseReader::open(
        &tcp,
        "/api/ports/watchdog/events?snapshot=true&kind=allocated",
        &[],
    );
    let first = sse.next().unwrap();
    assert_eq!(first.event, "existing");
    assert_eq!(first.json()["allocation"]["port"].as_u64(), Some(port));
    let done = sse.next().unwrap();
    assert_eq!(done.event, "snapshot_complete");
    allocate(&tcp, "next");
    assert_eq!(sse.next().unwrap().json()["service"], "next");
    let bad = http::get(&tcp, "/api/ports/watchdog/events?kind=nope");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("kind"));
}
