//! One allocation and its event read the same everywhere: REST, the event stream's `data:`,
//! the CLI's `--json` and `watch --json` print the same objects, key by key and value by value,
//! from a real daemon with a real owning process and a lease (the case that read four ways).

mod common;
#[path = "support/http.rs"]
mod http;
#[path = "support/sse.rs"]
mod sse;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{bin, cli, ChildDaemon, Owner};
use http::{get, post_json, Addr};
use serde_json::{json, Value};
use sse::SseReader;

fn cli_json(addr: &str, args: &[&str]) -> Value {
    let out = cli(addr, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every key of `a` and `b`, in the same order, value for value, with the path of the first
/// difference; then the two as compact JSON, byte for byte.
fn same(what: &str, a: &Value, b: &Value) {
    same_keys(what, a, b);
    assert_eq!(
        serde_json::to_string(a).unwrap(),
        serde_json::to_string(b).unwrap(),
        "{what}: byte for byte"
    );
}

fn same_keys(what: &str, a: &Value, b: &Value) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            assert_eq!(kx, ky, "{what}: the keys differ");
            for (k, v) in x {
                same_keys(&format!("{what}.{k}"), v, &y[k]);
            }
        }
        _ => assert_eq!(a, b, "{what}"),
    }
}

/// Times with exactly three fractional digits, in UTC.
fn is_wire_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.'
}

#[test]
fn an_allocation_and_its_event_read_the_same_in_rest_sse_cli_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    // No watchdog pass during the test: `observed` stays what the allocation was made with.
    let d = ChildDaemon::spawn(dir.path(), "27600-27605", &["--watchdog-interval", "1h"]);
    let tcp = Addr::Tcp(d.addr);
    let unix = format!("unix:{}", d.socket.display());
    let mut sse = SseReader::open(&tcp, "/api/ports/watchdog/events?kind=allocated", &[]);
    let mut watch = Command::new(bin())
        .args(["watch", "--json", "--kind", "allocated"])
        .env("PORTWARDEN_ADDR", &unix)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Both watchers are connected before the allocation.
    let connected = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        get(&tcp, "/api/ports/watchdog/status").json()["subscribers"] == 2
    });
    assert!(connected, "the SSE stream and `watch` connected");

    let mut owner = Owner::spawn(false, false);
    let made = post_json(
        &tcp,
        "/api/ports/allocations",
        &json!({"service": "web", "purpose": "one vocabulary", "pid": owner.pid(),
                "ttl_seconds": 300, "labels": {"team": "infra"}}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    let port = made["allocation"]["port"].as_u64().unwrap().to_string();

    // One allocation: REST's answer to the allocation and to a GET, `get --json`, `list --json`.
    let rest = get(&tcp, &format!("/api/ports/allocations/{port}")).json();
    same("REST allocate vs GET", &made["allocation"], &rest);
    same(
        "REST vs get --json",
        &rest,
        &cli_json(&unix, &["get", &port, "--json"]),
    );
    let listed = cli_json(&unix, &["list", "--json"]);
    same("REST vs list --json", &rest, &listed[0]);
    same(
        "REST list vs list --json",
        &get(&tcp, "/api/ports/allocations").json()["allocations"],
        &listed,
    );
    assert_eq!(rest["owner_kind"], "process_and_lease");
    assert_eq!(rest["pid"], owner.pid());
    assert!(rest["pid_start_time"].as_u64().is_some(), "{rest}");
    assert_eq!(rest["owner_uid"], 0, "root over loopback TCP");
    assert_eq!(rest["renewed_at"], Value::Null, "present, and null");
    for k in ["allocated_at", "expires_at"] {
        assert!(is_wire_time(&rest[k]), "{k}: {}", rest[k]);
    }

    // One event: the stream's `data:`, `watch --json`'s line and `history --json`'s element.
    let streamed = sse.next().unwrap();
    assert_eq!(streamed.event, "allocated");
    let streamed = streamed.json();
    let watched: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    same("SSE data vs watch --json", &streamed, &watched);
    let history = cli_json(&unix, &["history", &port, "--json"]);
    same("SSE data vs history --json", &streamed, &history[0]);
    assert!(is_wire_time(&streamed["at"]), "{streamed}");
    same(
        "the event's allocation vs REST",
        &streamed["allocation"],
        &rest,
    );
    assert_eq!(streamed["id"], Value::Null, "no stray keys");

    // The answers to allocate and release: REST's and the CLI's.
    let by_cli = cli_json(&unix, &["allocate", "api", "--json"]);
    let api = by_cli["allocation"]["port"].to_string();
    let mut keys: Vec<&String> = by_cli.as_object().unwrap().keys().collect();
    let mut rest_keys: Vec<&String> = made.as_object().unwrap().keys().collect();
    keys.sort();
    rest_keys.sort();
    assert_eq!(
        keys, rest_keys,
        "allocate: REST and --json have the same keys"
    );
    let released = cli_json(&unix, &["release", &api, "--json"]);
    let again = cli_json(&unix, &["allocate", "api2", "--json"]);
    let api2 = again["allocation"]["port"].as_u64().unwrap();
    let rest_released = http::request(
        &tcp,
        "DELETE",
        &format!("/api/ports/allocations/{api2}"),
        &[],
        None,
    )
    .json();
    let (a, b): (Vec<_>, Vec<_>) = (
        released.as_object().unwrap().keys().collect(),
        rest_released.as_object().unwrap().keys().collect(),
    );
    assert_eq!(a, b, "release: REST and --json have the same keys");
    assert!(is_wire_time(&released["quarantined_until"]));

    let _ = watch.kill();
    let _ = watch.wait();
    owner.kill9();
}
