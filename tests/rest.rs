//! The REST gateway as curl users meet it: the real daemon binary, a plain HTTP/1.1 client over
//! real TCP and Unix sockets, JSON shapes checked against the seed's field names, the same
//! allocations seen over REST, gRPC and the CLI, and every bad request answered with a 4xx JSON
//! error that changes nothing.

mod common;
#[path = "support/http.rs"]
mod http1;

use std::process::Command;

use common::{bin, ChildDaemon};
use http1::{get, post_json, request, Addr};
use portwarden_client::proto::{AllocateRequest, GetRequest};
use serde_json::{json, Value};
use tonic::Code;

fn tcp(d: &ChildDaemon) -> Addr {
    Addr::Tcp(d.addr)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort();
    k
}

/// The allocations and the range's counts, without what the watchdog's passes keep updating
/// (its observations and its own counters).
fn state(a: &Addr) -> (Value, Value) {
    let mut list = get(a, "/api/ports/allocations").json();
    for alloc in list["allocations"].as_array_mut().into_iter().flatten() {
        alloc.as_object_mut().unwrap().remove("observed");
    }
    let mut status = get(a, "/api/ports/status").json();
    status.as_object_mut().unwrap().remove("watchdog");
    (list, status)
}

fn has_all(v: &Value, want: &[&str]) {
    for k in want {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
}

/// The JSON error body: `{"code", "message", "details"}`, and nothing else.
fn error_body(r: &http1::Reply, status: u16, code: Code) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.text()
    );
    let v = r.json();
    assert_eq!(keys(&v), ["code", "details", "message"], "{v}");
    assert_eq!(v["code"], code as i32, "{v}");
    assert!(!v["message"].as_str().unwrap().is_empty());
    v
}

#[test]
fn every_path_answers_in_the_seed_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29000-29009", &["--quarantine", "0s"]);
    let a = tcp(&d);

    let s = get(&a, "/api/ports/status");
    assert_eq!(s.status, 200);
    assert_eq!(s.header("content-type"), Some("application/json"));
    let s = s.json();
    assert_eq!(s["port_range"], "29000-29009");
    assert_eq!(
        (s["total"].as_u64(), s["allocated"].as_u64()),
        (Some(10), Some(0))
    );
    has_all(
        &s,
        &[
            "available",
            "quarantined",
            "unavailable",
            "ranges",
            "warnings",
        ],
    );

    let r = post_json(
        &a,
        "/api/ports/allocations",
        &json!({"service": "grace_backend", "purpose": "Main Grace API server", "ttl_seconds": 300, "labels": {"team": "infra"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), Some("/api/ports/allocations/29000"));
    let created = r.json();
    has_all(
        &created,
        &[
            "allocation",
            "lease_token",
            "network_health",
            "warnings",
            "network_report",
        ],
    );
    assert_eq!(created["lease_token"].as_str().map(str::len), Some(32));
    let report = &created["network_report"];
    has_all(report, &["status", "critical_issues", "warnings", "checks"]);
    assert_eq!(report["checks"]["firewall"]["can_bind"], true);
    let alloc = &created["allocation"];
    assert_eq!(alloc["port"], 29000);
    assert_eq!(alloc["service"], "grace_backend");
    assert_eq!(alloc["purpose"], "Main Grace API server");
    assert_eq!(alloc["health"], "allocated");
    assert_eq!(alloc["owner_kind"], "lease");
    assert_eq!(alloc["labels"]["team"], "infra");
    assert!(
        alloc.get("lease_token").is_none(),
        "the token is only in the reply"
    );

    let list = get(&a, "/api/ports/allocations").json();
    assert_eq!(list["allocations"].as_array().unwrap().len(), 1);
    assert_eq!(list["allocations"][0], *alloc);
    let none = get(&a, "/api/ports/allocations?service=other").json();
    assert_eq!(none["allocations"], json!([]));
    assert_eq!(get(&a, "/api/ports/allocations/29000").json(), *alloc);

    let hc = get(&a, "/api/ports/health-check");
    assert_eq!(hc.status, 200);
    let hc = hc.json();
    assert_eq!(hc["total"], 1);
    assert_eq!(hc["by_health"]["allocated"], 1);
    assert_eq!(hc["ports"][0]["port"], 29000);
    assert_eq!(hc["ports"][0]["state"], "allocated");
    // The same holder gRPC's CheckPorts names.
    assert_eq!(hc["ports"][0]["holder"], "service grace_backend");

    let health = get(&a, "/api/ports/network/health").json();
    assert_eq!(
        keys(&health),
        ["checks", "critical_issues", "status", "warnings"]
    );
    for name in [
        "ipv4_available",
        "ipv6_available",
        "socket_reuse",
        "file_descriptors",
        "network_interfaces",
        "time_wait_sockets",
        "connection_limits",
        "dns_resolution",
        "port_exhaustion",
        "ssl_readiness",
    ] {
        assert!(
            health["checks"][name]["status"].is_string(),
            "{name}: {health}"
        );
    }
    assert_eq!(health["checks"]["ipv4_available"]["available"], true);
    assert!(
        health["checks"].get("firewall").is_none(),
        "no port, no probe"
    );
    let with_port = get(&a, "/api/ports/network/health?port=29005&fresh=true").json();
    assert_eq!(with_port["checks"]["firewall"]["port"], 29005);
    has_all(
        &with_port["checks"]["time_wait_sockets"],
        &["status", "time_wait_count", "note"],
    );

    let stats = get(&a, "/api/ports/network/stats").json();
    has_all(
        &stats["io"],
        &[
            "bytes_sent",
            "bytes_recv",
            "packets_sent",
            "packets_recv",
            "errors_in",
            "errors_out",
        ],
    );
    has_all(&stats["connections"], &["total", "by_status"]);
    assert!(
        stats["connections"]["by_status"]["LISTEN"]
            .as_u64()
            .unwrap()
            >= 1
    );

    let ex = get(&a, "/api/ports/network/port-exhaustion").json();
    has_all(
        &ex,
        &[
            "status",
            "ephemeral_ports_used",
            "ephemeral_ports_total",
            "usage_percent",
            "recommendation",
        ],
    );
    let tls = get(&a, "/api/ports/network/ssl-readiness").json();
    assert_eq!(tls["status"], "info", "not configured: {tls}");

    // The seed's WATCHDOG section: running, checks performed, issues detected.
    let w = get(&a, "/api/ports/watchdog/status").json();
    has_all(
        &w,
        &[
            "running",
            "interval_seconds",
            "checks_performed",
            "issues_detected",
            "reclaimed",
            "subscribers",
            "last_sequence",
        ],
    );
    assert_eq!(w["running"], true, "{w}");
    let status = get(&a, "/api/ports/status").json();
    assert_eq!(status["watchdog"]["running"], true, "{status}");

    let spec = get(&a, "/api/openapi.json");
    assert_eq!(spec.status, 200);
    let spec = spec.json();
    assert_eq!(spec["openapi"], "3.2.0");
    assert!(spec["paths"]["/api/ports/allocations/{port}/renew"]["post"].is_object());

    let m = get(&a, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        m.text().contains("portwarden_ports{state=\"allocated\"} 1"),
        "{}",
        m.text()
    );

    // Renew then release with the token, over TCP.
    let token = created["lease_token"].as_str().unwrap();
    let renewed = request(
        &a,
        "POST",
        "/api/ports/allocations/29000/renew",
        &[
            ("X-Lease-Token", token),
            ("Content-Type", "application/json"),
        ],
        Some(br#"{"requests_delta": 5, "errors_delta": 1}"#),
    );
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    assert_eq!(renewed.json()["request_count"], 5);
    assert!(renewed.json()["renewed_at"].is_string());
    let bare = request(
        &a,
        "POST",
        "/api/ports/allocations/29000/renew",
        &[("X-Lease-Token", token)],
        None,
    );
    assert_eq!(bare.status, 200, "a renew needs no body: {}", bare.text());
    let released = request(
        &a,
        "DELETE",
        "/api/ports/allocations/29000",
        &[("X-Lease-Token", token)],
        None,
    );
    assert_eq!(released.status, 200, "{}", released.text());
    has_all(&released.json(), &["allocation", "quarantined_until"]);
    error_body(
        &get(&a, "/api/ports/allocations/29000"),
        404,
        Code::NotFound,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocation_is_the_same_over_rest_grpc_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29010-29019", &["--quarantine", "0s"]);
    let a = tcp(&d);
    let mut grpc = d.tcp().await;

    // REST -> gRPC and the CLI.
    let a2 = a.clone();
    let created = tokio::task::spawn_blocking(move || {
        post_json(&a2, "/api/ports/allocations", &json!({"service": "web", "purpose": "rest made", "started_by": "tests", "pid": std::process::id()}))
    })
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let rest = created.json()["allocation"].clone();
    let port = rest["port"].as_u64().unwrap() as u32;
    let g = grpc
        .get(GetRequest { port })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap();
    assert_eq!(g.service, "web");
    assert_eq!(g.purpose, "rest made");
    assert_eq!(g.started_by, "tests");
    assert_eq!(g.pid.map(i64::from), rest["pid"].as_i64());
    assert_eq!(g.allocated_at.unwrap().seconds, {
        let at = rest["allocated_at"].as_str().unwrap();
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    });
    let out = Command::new(bin())
        .args(["get", &port.to_string(), "--json"])
        .env("PORTWARDEN_ADDR", format!("http://{}", d.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "port",
        "service",
        "purpose",
        "started_by",
        "pid",
        "health",
        "labels",
        "request_count",
    ] {
        assert_eq!(cli[k], rest[k], "{k}: cli {cli} rest {rest}");
    }
    assert_eq!(
        cli["allocated_at"].as_str().unwrap()[..19],
        rest["allocated_at"].as_str().unwrap()[..19]
    );

    // gRPC -> REST, released over REST with the gRPC token.
    let r = grpc
        .allocate(AllocateRequest {
            service: "api".into(),
            purpose: "grpc made".into(),
            ttl_seconds: Some(60),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let gport = r.allocation.unwrap().port;
    let (seen, released) = tokio::task::spawn_blocking({
        let a = a.clone();
        let token = r.lease_token.clone();
        move || {
            let seen = get(&a, &format!("/api/ports/allocations/{gport}"));
            let released = request(
                &a,
                "DELETE",
                &format!("/api/ports/allocations/{gport}"),
                &[("X-Lease-Token", &token)],
                None,
            );
            (seen, released)
        }
    })
    .await
    .unwrap();
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json()["service"], "api");
    assert_eq!(seen.json()["purpose"], "grpc made");
    assert_eq!(seen.json()["ttl_seconds"], 60);
    assert_eq!(released.status, 200, "{}", released.text());
    let e = grpc.get(GetRequest { port: gport }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // The CLI -> REST.
    let out = Command::new(bin())
        .args([
            "allocate",
            "cli-made",
            "--purpose",
            "from the shell",
            "--quiet",
        ])
        .env("PORTWARDEN_ADDR", format!("unix:{}", d.socket.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cport = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let seen =
        tokio::task::spawn_blocking(move || get(&a, &format!("/api/ports/allocations/{cport}")))
            .await
            .unwrap();
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert_eq!(seen.json()["service"], "cli-made");
    assert_eq!(seen.json()["purpose"], "from the shell");
}

#[test]
fn bad_requests_get_a_4xx_json_error_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29020-29024", &[]);
    let a = tcp(&d);
    let made = post_json(&a, "/api/ports/allocations", &json!({"service": "held"}));
    assert_eq!(made.status, 201);
    let before = state(&a);

    let json_ct = ("Content-Type", "application/json");
    let big = format!(
        "{{\"service\":\"x\",\"purpose\":\"{}\"}}",
        "a".repeat(70 * 1024)
    );
    let cases: Vec<(&str, http1::Reply, u16, Code, &str)> = vec![
        (
            "malformed JSON",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(b"{bad"),
            ),
            400,
            Code::InvalidArgument,
            "body",
        ),
        (
            "wrong content type",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[("Content-Type", "text/plain")],
                Some(br#"{"service":"x"}"#),
            ),
            415,
            Code::InvalidArgument,
            "Content-Type",
        ),
        (
            "no content type",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[],
                Some(br#"{"service":"x"}"#),
            ),
            415,
            Code::InvalidArgument,
            "Content-Type",
        ),
        (
            "unknown field",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(br#"{"service":"x","colour":"red"}"#),
            ),
            400,
            Code::InvalidArgument,
            "colour",
        ),
        (
            "missing service",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(b"{}"),
            ),
            400,
            Code::InvalidArgument,
            "service",
        ),
        (
            "wrong type",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(br#"{"service":"x","port":"eighty"}"#),
            ),
            400,
            Code::InvalidArgument,
            "port",
        ),
        (
            "bad service",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(br#"{"service":"bad name"}"#),
            ),
            400,
            Code::InvalidArgument,
            "service",
        ),
        (
            "port outside the ranges",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(br#"{"service":"x","port":80}"#),
            ),
            400,
            Code::InvalidArgument,
            "port",
        ),
        (
            "oversized body",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct],
                Some(big.as_bytes()),
            ),
            413,
            Code::ResourceExhausted,
            "bytes",
        ),
        (
            "bad path parameter",
            request(&a, "DELETE", "/api/ports/allocations/eighty", &[], None),
            400,
            Code::InvalidArgument,
            "port",
        ),
        (
            "port out of u16",
            get(&a, "/api/ports/allocations/70000"),
            400,
            Code::InvalidArgument,
            "port",
        ),
        (
            "wrong token",
            request(
                &a,
                "DELETE",
                "/api/ports/allocations/29020",
                &[("X-Lease-Token", "0000")],
                None,
            ),
            403,
            Code::PermissionDenied,
            "does not match",
        ),
        (
            "renew with a bad body",
            request(
                &a,
                "POST",
                "/api/ports/allocations/29020/renew",
                &[json_ct],
                Some(br#"{"ttl_seconds":-1}"#),
            ),
            400,
            Code::InvalidArgument,
            "ttl_seconds",
        ),
        (
            "foreign Origin",
            request(
                &a,
                "POST",
                "/api/ports/allocations",
                &[json_ct, ("Origin", "https://evil.example")],
                Some(br#"{"service":"x"}"#),
            ),
            403,
            Code::PermissionDenied,
            "cross-site",
        ),
        (
            "look-alike Origin",
            request(
                &a,
                "DELETE",
                "/api/ports/allocations/29020",
                &[("Origin", "http://localhost.evil.example:7070")],
                None,
            ),
            403,
            Code::PermissionDenied,
            "cross-site",
        ),
        (
            "DNS rebinding (Origin and Host agree, Host is not loopback)",
            request(
                &a,
                "DELETE",
                "/api/ports/allocations/29020",
                &[
                    ("Host", "evil.example:7070"),
                    ("Origin", "http://evil.example:7070"),
                ],
                None,
            ),
            421,
            Code::PermissionDenied,
            "Host 'evil.example:7070'",
        ),
        (
            "cross-site fetch",
            request(
                &a,
                "DELETE",
                "/api/ports/allocations/29020",
                &[("Sec-Fetch-Site", "cross-site")],
                None,
            ),
            403,
            Code::PermissionDenied,
            "cross-site",
        ),
        (
            "not allocated",
            get(&a, "/api/ports/allocations/29023"),
            404,
            Code::NotFound,
            "not allocated",
        ),
        (
            "bad service filter",
            get(&a, "/api/ports/allocations?service=a%20b"),
            400,
            Code::InvalidArgument,
            "service",
        ),
        (
            "bad health port",
            get(&a, "/api/ports/network/health?port=0"),
            400,
            Code::InvalidArgument,
            "port",
        ),
        (
            "health port not a number",
            get(&a, "/api/ports/network/health?port=x"),
            400,
            Code::InvalidArgument,
            "port",
        ),
        (
            "method not allowed",
            request(&a, "PUT", "/api/ports/status", &[], None),
            405,
            Code::Unimplemented,
            "PUT",
        ),
        (
            "unknown path",
            get(&a, "/api/ports/nope"),
            404,
            Code::NotFound,
            "/api/ports/nope",
        ),
        (
            "gRPC path from a form",
            request(
                &a,
                "POST",
                "/portwarden.v1.PortsService/Allocate",
                &[("Content-Type", "text/plain")],
                Some(b"service=x"),
            ),
            415,
            Code::InvalidArgument,
            "gRPC method",
        ),
        (
            "gRPC over HTTP/1.1",
            request(
                &a,
                "POST",
                "/portwarden.v1.PortsService/Allocate",
                &[("Content-Type", "application/grpc")],
                Some(b"\0\0\0\0\0"),
            ),
            400,
            Code::InvalidArgument,
            "HTTP/2",
        ),
        (
            "gRPC path cross-site",
            request(
                &a,
                "POST",
                "/portwarden.v1.PortsService/Release",
                &[
                    ("Content-Type", "application/grpc"),
                    ("Origin", "https://evil.example"),
                ],
                Some(b"\0\0\0\0\0"),
            ),
            403,
            Code::PermissionDenied,
            "cross-site",
        ),
    ];
    for (what, reply, status, code, names) in cases {
        assert_ne!(reply.status, 500, "{what}");
        let v = error_body(&reply, status, code);
        assert!(
            v["message"].as_str().unwrap().contains(names),
            "{what}: the message names {names:?}: {v}"
        );
    }
    assert_eq!(before, state(&a), "nothing changed");
    // Same-origin loopback pages (none is served, but nothing forbids it) may write.
    let ok = request(
        &a,
        "POST",
        "/api/ports/allocations",
        &[json_ct, ("Origin", "http://localhost")],
        Some(br#"{"service":"x"}"#),
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
}

#[test]
fn the_callers_own_uid_releases_and_renews_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29030-29034", &["--quarantine", "0s"]);
    let unix = Addr::Unix(d.socket.clone());
    let made = post_json(
        &unix,
        "/api/ports/allocations",
        &json!({"service": "mine", "ttl_seconds": 60}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let alloc = made.json()["allocation"].clone();
    let uid = unsafe { libc::geteuid() };
    assert_eq!(alloc["owner_uid"], uid, "SO_PEERCRED names the caller");
    let port = alloc["port"].as_u64().unwrap();
    let path = format!("/api/ports/allocations/{port}");
    // Over loopback TCP the socket table names the caller too (another uid is refused: see
    // tests/caller_identity.rs).
    let renewed = request(&tcp(&d), "POST", &format!("{path}/renew"), &[], None);
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    let renewed = request(&unix, "POST", &format!("{path}/renew"), &[], None);
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    let released = request(&unix, "DELETE", &path, &[], None);
    assert_eq!(released.status, 200, "{}", released.text());
    assert_eq!(
        get(&unix, "/api/ports/allocations").json()["allocations"],
        json!([])
    );
}
