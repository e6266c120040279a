//! `/metrics` as Prometheus scrapes it: valid text exposition (promtool agrees), node_exporter
//! naming, and values that move with what happens.

mod common;
#[path = "support/http.rs"]
mod http1;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::ChildDaemon;
use http1::{get, post_json, request, sample, Addr};
use serde_json::json;

/// promtool on PATH; None when absent, unless PORTWARDEN_REQUIRE_PROMTOOL=1 (the test script
/// sets it), which makes absence a failure.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|c| c.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("PORTWARDEN_REQUIRE_PROMTOOL").as_deref(),
            Ok("1"),
            "promtool is required but was not found (Debian package prometheus)"
        );
        eprintln!("promtool not found: skipping its check (apt-get install prometheus)");
    }
    found
}

fn scrape(a: &Addr) -> String {
    let r = get(a, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn metrics_pass_promtool_and_move_with_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29040-29049", &["--quarantine", "60s"]);
    let a = Addr::Tcp(d.addr);
    let first = scrape(&a);
    assert_eq!(sample(&first, "portwarden_managed_ports"), Some(10.0));
    assert_eq!(
        sample(&first, r#"portwarden_ports{state="allocated"}"#),
        Some(0.0)
    );

    let made = post_json(&a, "/api/ports/allocations", &json!({"service": "web"}));
    assert_eq!(made.status, 201);
    let token = made.json()["lease_token"].as_str().unwrap().to_string();
    post_json(&a, "/api/ports/allocations", &json!({"service": "api"}));
    // Two refusals: a bad name and a wrong token.
    post_json(
        &a,
        "/api/ports/allocations",
        &json!({"service": "bad name"}),
    );
    request(
        &a,
        "DELETE",
        "/api/ports/allocations/29041",
        &[("X-Lease-Token", "0123456789abcdef0123456789abcdef")],
        None,
    );
    request(
        &a,
        "DELETE",
        "/api/ports/allocations/29040",
        &[("X-Lease-Token", &token)],
        None,
    );

    let text = scrape(&a);
    assert_eq!(
        sample(&text, r#"portwarden_ports{state="allocated"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"portwarden_ports{state="quarantined"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"portwarden_ports{state="free"}"#),
        Some(8.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_requests_total{transport="rest",method="POST /api/ports/allocations"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_request_errors_total{transport="rest",method="DELETE /api/ports/allocations/{port}"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_refusals_total{code="INVALID_ARGUMENT"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_refusals_total{code="PERMISSION_DENIED"}"#
        ),
        Some(1.0)
    );
    // The allocator's and the watchdog's totals.
    assert_eq!(sample(&text, "portwarden_allocations_total"), Some(2.0));
    assert_eq!(sample(&text, "portwarden_releases_total"), Some(1.0));
    assert_eq!(
        sample(&text, r#"portwarden_reclaims_total{reason="owner_exited"}"#),
        Some(0.0)
    );
    assert!(sample(&text, "portwarden_watchdog_passes_total").is_some_and(|n| n >= 1.0));
    assert!(
        sample(&text, "portwarden_watchdog_pass_duration_seconds_count").is_some_and(|n| n >= 1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_watchdog_pass_duration_seconds_bucket{le="+Inf"}"#
        ),
        sample(&text, "portwarden_watchdog_pass_duration_seconds_count"),
        "the +Inf bucket holds every pass"
    );
    assert!(sample(&text, "portwarden_events_last_sequence").is_some_and(|n| n >= 3.0));
    assert_eq!(sample(&text, "portwarden_watchers"), Some(0.0));
    for needle in [
        r#"portwarden_network_check_status{check="ipv4_available"} 0"#,
        r#"portwarden_tcp_connections{state="TIME_WAIT"}"#,
        r#"portwarden_tcp_connections{state="CLOSE_WAIT"}"#,
        "portwarden_ephemeral_ports_used_ratio ",
        "# TYPE portwarden_requests_total counter",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
    let listen = sample(&text, r#"portwarden_tcp_connections{state="LISTEN"}"#).unwrap();
    assert!(listen >= 1.0, "the daemon's own listener");

    // gRPC requests are counted in the same place, by method.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = d.tcp().await;
        c.list(portwarden_client::proto::ListRequest::default())
            .await
            .unwrap();
        let e = c
            .get(portwarden_client::proto::GetRequest { port: 29049 })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
    });
    let text = scrape(&a);
    assert_eq!(
        sample(
            &text,
            r#"portwarden_requests_total{transport="grpc",method="/portwarden.v1.PortsService/List"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_request_errors_total{transport="grpc",method="/portwarden.v1.PortsService/Get"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"portwarden_refusals_total{code="NOT_FOUND"}"#),
        Some(1.0)
    );
    // gRPC over HTTP/1.1 is refused before the method runs, and counted as the error it is.
    let refused = request(
        &a,
        "POST",
        "/portwarden.v1.PortsService/List",
        &[("Content-Type", "application/grpc")],
        Some(b"\0\0\0\0\0"),
    );
    assert_eq!(refused.status, 400);
    let text = scrape(&a);
    assert_eq!(
        sample(
            &text,
            r#"portwarden_request_errors_total{transport="grpc",method="/portwarden.v1.PortsService/List"}"#
        ),
        Some(1.0)
    );

    if let Some(promtool) = promtool() {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_method_a_path_does_not_take_is_counted_as_not_allowed_under_its_route() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "31640-31644", &[]);
    let a = Addr::Tcp(d.addr);
    // curl -X PUT http://127.0.0.1:7070/api/ports/status
    let r = request(&a, "PUT", "/api/ports/status", &[], None);
    assert_eq!(r.status, 405, "{}", r.text());
    let text = scrape(&a);
    assert_eq!(
        sample(
            &text,
            r#"portwarden_requests_total{transport="rest",method="PUT /api/ports/status"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"portwarden_refusals_total{code="METHOD_NOT_ALLOWED"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"portwarden_refusals_total{code="UNIMPLEMENTED"}"#),
        None,
        "{text}"
    );
    assert!(!text.contains(r#"method="unknown""#), "{text}");
    // The log says the same.
    d.wait_for_log("refused PUT /api/ports/status: METHOD_NOT_ALLOWED")
        .unwrap_or_else(|log| panic!("{log}"));
}
