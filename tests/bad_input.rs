//! Every bad input is refused with the right code, names the offending field in google.rpc
//! details, and changes nothing.

mod common;

use std::time::Duration;

use common::TestDaemon;
use portwarden_client::proto::*;
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn fields(s: &Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn req(service: &str) -> AllocateRequest {
    AllocateRequest {
        service: service.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_allocations_name_the_field_and_change_nothing() {
    let d = TestDaemon::start("22000-22003", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let too_many_labels = (0..17)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let cases: Vec<(&str, AllocateRequest, &str)> = vec![
        ("empty service", req(""), "service"),
        ("space in service", req("a b"), "service"),
        ("65-char service", req(&"a".repeat(65)), "service"),
        ("non-ascii service", req("s\u{e9}rvice"), "service"),
        (
            "long purpose",
            AllocateRequest {
                purpose: "p".repeat(257),
                ..req("ok")
            },
            "purpose",
        ),
        (
            "long started_by",
            AllocateRequest {
                started_by: "p".repeat(257),
                ..req("ok")
            },
            "started_by",
        ),
        (
            "17 labels",
            AllocateRequest {
                labels: too_many_labels,
                ..req("ok")
            },
            "labels",
        ),
        (
            "bad label key",
            AllocateRequest {
                labels: [("a b".into(), "v".into())].into(),
                ..req("ok")
            },
            "labels[a b]",
        ),
        (
            "port outside range",
            AllocateRequest {
                port: Some(9000),
                ..req("ok")
            },
            "port",
        ),
        (
            "port zero",
            AllocateRequest {
                port: Some(0),
                ..req("ok")
            },
            "port",
        ),
        (
            "port over 65535",
            AllocateRequest {
                port: Some(70000),
                ..req("ok")
            },
            "port",
        ),
        (
            "ttl zero",
            AllocateRequest {
                ttl_seconds: Some(0),
                ..req("ok")
            },
            "ttl_seconds",
        ),
        (
            "ttl over 30 days",
            AllocateRequest {
                ttl_seconds: Some(30 * 86400 + 1),
                ..req("ok")
            },
            "ttl_seconds",
        ),
        (
            "pid that does not exist",
            AllocateRequest {
                pid: Some(i32::MAX),
                ..req("ok")
            },
            "pid",
        ),
        (
            "negative pid",
            AllocateRequest {
                pid: Some(-5),
                ..req("ok")
            },
            "pid",
        ),
        (
            "owner_is_caller over TCP",
            AllocateRequest {
                owner_is_caller: true,
                ..req("ok")
            },
            "owner_is_caller",
        ),
    ];
    for (what, r, field) in cases {
        let e = c.allocate(r).await.expect_err(what);
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert_eq!(fields(&e), [field], "{what}");
        assert!(
            e.message().contains(field),
            "{what}: message names the field: {}",
            e.message()
        );
    }
    // Several violations at once are all reported.
    let e = c
        .allocate(AllocateRequest {
            port: Some(1),
            ttl_seconds: Some(0),
            ..req("")
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["service", "port", "ttl_seconds"]);
    assert!(common::list(&mut c).await.is_empty());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_and_ports_never_release_anything() {
    let d = TestDaemon::start("22010-22011", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let r = c.allocate(req("held")).await.unwrap().into_inner();
    let port = r.allocation.unwrap().port;
    let e = c
        .release(ReleaseRequest {
            port,
            lease_token: "f".repeat(32),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .release(ReleaseRequest {
            port: 22011,
            lease_token: r.lease_token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::NotFound,
        "another port's token releases nothing"
    );
    let e = c
        .release(ReleaseRequest {
            port: 9999,
            lease_token: r.lease_token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), fields(&e)),
        (Code::InvalidArgument, vec!["port".to_string()])
    );
    let e = c
        .renew(RenewRequest {
            port,
            lease_token: r.lease_token.clone(),
            ttl_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), fields(&e)),
        (Code::InvalidArgument, vec!["ttl_seconds".to_string()])
    );
    let e = c.get(GetRequest { port: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .list(ListRequest {
            service: "no spaces allowed".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["service"]);
    let e = c
        .check_ports(CheckPortsRequest {
            ports: vec![80, 0, 70000],
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["ports[1]", "ports[2]"]);
    let e = c
        .check_ports(CheckPortsRequest { ports: vec![] })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["ports"]);
    let still = c
        .get(GetRequest { port })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap();
    assert_eq!(still.service, "held");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_names_its_holder_and_a_full_range_names_who_holds_it() {
    let d = TestDaemon::start("22020-22022", Duration::ZERO).await;
    let mut c = d.tcp().await;
    c.allocate(AllocateRequest {
        port: Some(22020),
        ..req("alpha")
    })
    .await
    .unwrap();
    let e = c
        .allocate(AllocateRequest {
            port: Some(22020),
            ..req("beta")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains("alpha"), "{}", e.message());
    let info = e
        .get_error_details()
        .resource_info()
        .cloned()
        .expect("ResourceInfo detail");
    assert_eq!(
        (info.resource_name.as_str(), info.owner.as_str()),
        ("22020", "service alpha")
    );

    c.allocate(req("alpha")).await.unwrap();
    c.allocate(req("beta")).await.unwrap();
    let e = c.allocate(req("gamma")).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    let d2 = e.get_error_details();
    let quota = d2.quota_failure().expect("QuotaFailure detail");
    let holders: Vec<(String, String)> = quota
        .violations
        .iter()
        .map(|v| (v.subject.clone(), v.description.clone()))
        .collect();
    assert_eq!(
        holders,
        [
            ("service alpha".to_string(), "holds 2 port(s)".to_string()),
            ("service beta".to_string(), "holds 1 port(s)".to_string())
        ]
    );
    assert_eq!(
        d2.error_info()
            .unwrap()
            .metadata
            .get("held")
            .map(String::as_str),
        Some("3")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused() {
    let d = TestDaemon::start("22030-22031", Duration::ZERO).await;
    let mut c = d.tcp().await;
    let huge = AllocateRequest {
        purpose: "x".repeat(70 * 1024),
        ..req("big")
    };
    let e = c.allocate(huge).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );
    assert!(common::list(&mut c).await.is_empty());
    d.stop().await;
}
