//! The gRPC surface as users meet it: grpcurl (reflection v1alpha) list/describe/call over TCP
//! and the Unix socket, reflection v1 with a tonic client, the health service, UNIMPLEMENTED for
//! unknown paths and for the watchdog, which is not built yet.

mod common;

use std::process::Command;
use std::time::Duration;

use common::TestDaemon;
use tonic::Code;

fn run(grpcurl: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(grpcurl)
        .args(args)
        .output()
        .expect("run grpcurl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "grpcurl {args:?} failed: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_allocates() {
    let Some(grpcurl) = common::grpcurl() else {
        return;
    };
    let d = TestDaemon::start("26000-26010", Duration::ZERO).await;
    let addr = d.addr.to_string();
    let g = grpcurl.clone();
    let a = addr.clone();
    let sock = d.socket.to_string_lossy().to_string();
    let (list, describe, call, health, unix_call) = tokio::task::spawn_blocking(move || {
        (
            run(&g, &["-plaintext", &a, "list"]),
            run(
                &g,
                &["-plaintext", &a, "describe", "portwarden.v1.PortsService"],
            ),
            run(
                &g,
                &[
                    "-plaintext",
                    "-d",
                    r#"{"service":"grpcurl-test","purpose":"from grpcurl"}"#,
                    &a,
                    "portwarden.v1.PortsService/Allocate",
                ],
            ),
            run(&g, &["-plaintext", &a, "grpc.health.v1.Health/Check"]),
            run(
                &g,
                &[
                    "-plaintext",
                    "-unix",
                    "-authority",
                    "localhost",
                    "-d",
                    r#"{"service":"over-unix"}"#,
                    &sock,
                    "portwarden.v1.PortsService/Allocate",
                ],
            ),
        )
    })
    .await
    .unwrap();
    for svc in [
        "portwarden.v1.PortsService",
        "portwarden.v1.NetworkService",
        "portwarden.v1.WatchdogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(list.contains(svc), "list shows {svc}: {list}");
    }
    for rpc in [
        "rpc Allocate",
        "rpc Release",
        "rpc Renew",
        "rpc Get",
        "rpc List",
        "rpc Status",
        "rpc CheckPorts",
    ] {
        assert!(describe.contains(rpc), "describe shows {rpc}: {describe}");
    }
    let v: serde_json::Value = serde_json::from_str(&call).expect("grpcurl prints JSON");
    assert_eq!(v["allocation"]["port"], 26000);
    assert_eq!(v["allocation"]["service"], "grpcurl-test");
    assert_eq!(v["leaseToken"].as_str().map(str::len), Some(32));
    assert!(health.contains("SERVING"), "{health}");
    let v: serde_json::Value = serde_json::from_str(&unix_call).expect("JSON over the Unix socket");
    assert_eq!(v["allocation"]["service"], "over-unix");

    // An invalid request shows the field in grpcurl's error output.
    let g = grpcurl.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(g)
            .args([
                "-plaintext",
                "-d",
                r#"{"service":"bad name"}"#,
                &addr,
                "portwarden.v1.PortsService/Allocate",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidArgument") && err.contains("service"),
        "{err}"
    );
    d.stop().await;
}

/// grpcurl decodes every google.rpc detail the daemon sends (their descriptors are served by
/// reflection), instead of printing "not recognized" and raw bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_decodes_the_error_details() {
    let Some(grpcurl) = common::grpcurl() else {
        return;
    };
    let d = TestDaemon::start("26060-26061", Duration::from_secs(60)).await;
    let addr = d.addr.to_string();
    let call = move |body: &str, method: &str| {
        let out = Command::new(&grpcurl)
            .args(["-plaintext", "-max-time", "10", "-d", body, &addr])
            .arg(format!("portwarden.v1.PortsService/{method}"))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let errors = tokio::task::spawn_blocking(move || {
        let mut errors = Vec::new();
        errors.push(call(r#"{"service":"bad name"}"#, "Allocate").1);
        errors.push(call(r#"{"port":26060}"#, "Get").1);
        let (a, _) = call(r#"{"service":"a"}"#, "Allocate");
        call(r#"{"service":"b"}"#, "Allocate");
        let a: serde_json::Value = serde_json::from_str(&a).unwrap();
        errors.push(call(r#"{"port":26060,"lease_token":"wrong"}"#, "Release").1);
        let token = a["leaseToken"].as_str().unwrap().to_string();
        call(
            &format!(r#"{{"port":26060,"lease_token":"{token}"}}"#),
            "Release",
        );
        errors.push(call(r#"{"service":"c","port":26060}"#, "Allocate").1);
        errors.push(call(r#"{"service":"c"}"#, "Allocate").1);
        errors.join("\n")
    })
    .await
    .unwrap();
    for detail in [
        r#"{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"service""#,
        r#"{"@type":"type.googleapis.com/google.rpc.ResourceInfo","#,
        r#"{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"portwarden.dev","#,
        r#""reason":"LEASE_NOT_AUTHORIZED"}"#,
        r#"{"@type":"type.googleapis.com/google.rpc.PreconditionFailure","violations":[{"type":"QUARANTINE""#,
        r#"{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"#,
        r#"{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"subject":"service b""#,
        r#""reason":"RANGE_EXHAUSTED""#,
    ] {
        assert!(errors.contains(detail), "{detail}\nin:\n{errors}");
    }
    assert!(!errors.contains("not recognized"), "{errors}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_serves_the_contract() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let d = TestDaemon::start("26020-26021", Duration::ZERO).await;
    let mut c = ServerReflectionClient::new(d.tcp_channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = c
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("{msg:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"portwarden.v1.PortsService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.reflection.v1.ServerReflection".to_string()),
        "{names:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_answer_unimplemented_and_every_service_is_built() {
    use portwarden_client::proto::network_service_client::NetworkServiceClient;
    use portwarden_client::proto::watchdog_service_client::WatchdogServiceClient;
    use portwarden_client::proto::{HealthRequest, WatchdogStatusRequest};

    let d = TestDaemon::start("26030-26031", Duration::ZERO).await;
    let channel = d.tcp_channel().await;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let e = grpc
        .unary(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/portwarden.v1.Nope/Missing"),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    let report = NetworkServiceClient::new(channel.clone())
        .health(HealthRequest { port: None })
        .await;
    assert!(report.is_ok(), "NetworkService is built: {report:?}");
    let status = WatchdogServiceClient::new(channel)
        .status(WatchdogStatusRequest {})
        .await;
    assert!(status.is_ok(), "WatchdogService is built: {status:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_goes_not_serving_when_the_daemon_shuts_down() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let d = TestDaemon::start("26040-26041", Duration::ZERO).await;
    let mut health = HealthClient::new(d.tcp_channel().await);
    let service = "portwarden.v1.PortsService".to_string();
    let mut watch = health
        .watch(HealthCheckRequest {
            service: service.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    let stopping = tokio::spawn(d.stop());
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("an update before the stream ends");
    match next {
        Ok(Some(update)) => assert_eq!(update.status(), ServingStatus::NotServing),
        other => panic!("expected NOT_SERVING, got {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown completes with a watch stream open")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_client_gets_json_errors_not_grpc_status() {
    use std::io::{Read, Write};
    let d = TestDaemon::start("26050-26051", Duration::ZERO).await;
    let addr = d.addr;
    let ask = move |raw: &'static [u8]| {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(raw).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    let unknown =
        ask(b"GET /api/ports/nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
    // A gRPC method reached by a plain HTTP POST does not run.
    let method = ask(b"POST /portwarden.v1.PortsService/Allocate HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .await
        .unwrap();
    for (reply, status, code) in [(unknown, "404", 5), (method, "415", 3)] {
        assert!(reply.starts_with(&format!("HTTP/1.1 {status}")), "{reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{reply}"
        );
        assert!(
            !reply.to_ascii_lowercase().contains("grpc-status"),
            "{reply}"
        );
        let body: serde_json::Value =
            serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["code"], code, "{reply}");
    }
    let mut c = d.tcp().await;
    let list = c
        .list(portwarden_client::proto::ListRequest::default())
        .await
        .unwrap();
    assert!(
        list.into_inner().allocations.is_empty(),
        "nothing was allocated"
    );
    d.stop().await;
}
