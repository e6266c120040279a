//! TLS and mutual TLS on the TCP listener, with rcgen-made certificates: who gets in, who is
//! refused, and what grpcurl, the CLI and the Rust client need to say. Plaintext on an address
//! other hosts can reach is refused unless --insecure-listen says so.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/child.rs"]
mod child;
mod common;

use std::process::Command;
use std::time::Duration;

use certs::Pki;
use common::{bin, config, grpcurl, TestDaemon};
use portwarden::server;
use portwarden_client::proto::network_service_client::NetworkServiceClient;
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{ListRequest, TlsReadinessRequest};
use portwarden_client::{connect_with, Target, TlsOptions};

/// A daemon on 127.0.0.1:0 serving TLS with the PKI's server certificate; `mutual` requires
/// client certificates signed by the PKI's CA.
async fn tls_daemon(mutual: bool) -> (TestDaemon, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), &[]);
    let mut cfg = config(dir.path(), "26100-26110", Duration::ZERO);
    cfg.network.tls_cert = Some(pki.server_cert.clone());
    cfg.network.tls_key = Some(pki.server_key.clone());
    cfg.tls_client_ca = mutual.then(|| pki.ca.clone());
    let socket = cfg.unix_socket.clone().unwrap();
    let daemon = server::start(cfg).await.expect("daemon starts with TLS");
    let addr = daemon.tcp_addr;
    (
        TestDaemon {
            daemon: Some(daemon),
            dir,
            addr,
            socket,
        },
        pki,
    )
}

fn https(d: &TestDaemon) -> Target {
    Target::Tcp(format!("https://127.0.0.1:{}", d.addr.port()))
}

async fn list_over(target: &Target, tls: &TlsOptions) -> Result<usize, String> {
    let channel = connect_with(target, tls).await.map_err(|e| e.to_string())?;
    PortsServiceClient::new(channel)
        .list(ListRequest::default())
        .await
        .map(|r| r.into_inner().allocations.len())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

#[tokio::test]
async fn a_client_trusting_the_ca_is_served_over_tls_and_plaintext_is_not() {
    let (d, pki) = tls_daemon(false).await;
    let trusting = TlsOptions {
        ca: Some(pki.ca.clone()),
        ..Default::default()
    };
    assert_eq!(list_over(&https(&d), &trusting).await, Ok(0));

    // The same name check a browser does: the certificate is for 127.0.0.1 and localhost.
    let wrong_name = TlsOptions {
        server_name: Some("elsewhere.example".into()),
        ..trusting.clone()
    };
    assert!(list_over(&https(&d), &wrong_name).await.is_err());

    // Without the CA (system roots only) the self-made certificate is not trusted.
    assert!(list_over(&https(&d), &TlsOptions::default()).await.is_err());

    // Plaintext HTTP/2 to a TLS port gets nowhere.
    let plain = Target::Tcp(format!("http://{}", d.addr));
    assert!(list_over(&plain, &TlsOptions::default()).await.is_err());

    // The Unix socket stays plaintext (local callers, identified by SO_PEERCRED).
    let mut unix = d.unix().await;
    unix.list(ListRequest::default()).await.expect("unix list");
    d.stop().await;
}

#[tokio::test]
async fn under_mutual_tls_a_client_without_a_certificate_is_refused() {
    let (d, pki) = tls_daemon(true).await;
    let ca_only = TlsOptions {
        ca: Some(pki.ca.clone()),
        ..Default::default()
    };
    let refused = list_over(&https(&d), &ca_only).await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");

    let (stranger_cert, stranger_key) = pki.stranger();
    let stranger = TlsOptions {
        cert: Some(stranger_cert),
        key: Some(stranger_key),
        ..ca_only.clone()
    };
    let refused = list_over(&https(&d), &stranger).await;
    assert!(
        refused.is_err(),
        "certificate of an unknown CA: {refused:?}"
    );

    let member = TlsOptions {
        cert: Some(pki.client_cert.clone()),
        key: Some(pki.client_key.clone()),
        ..ca_only
    };
    assert_eq!(list_over(&https(&d), &member).await, Ok(0));
    d.stop().await;
}

#[tokio::test]
async fn ssl_readiness_checks_the_certificate_the_listener_serves() {
    let (d, pki) = tls_daemon(false).await;
    let channel = connect_with(
        &https(&d),
        &TlsOptions {
            ca: Some(pki.ca.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    let check = NetworkServiceClient::new(channel)
        .tls_readiness(TlsReadinessRequest {})
        .await
        .expect("tls readiness")
        .into_inner()
        .check
        .expect("a check");
    assert_eq!(check.name, "ssl_readiness");
    let fields = check.fields.expect("fields").fields;
    assert_eq!(
        fields.get("cert_path").and_then(|v| match &v.kind {
            Some(prost_types::value::Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        }),
        Some(pki.server_cert.display().to_string()),
        "{fields:?}"
    );
    d.stop().await;
}

// The daemon runs in this process: the blocking child process needs a second worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_calls_over_mutual_tls_with_the_documented_flags() {
    let Some(grpcurl) = grpcurl() else { return };
    let (d, pki) = tls_daemon(true).await;
    let addr = format!("127.0.0.1:{}", d.addr.port());
    let run = |extra: &[&str], method: &str| {
        Command::new(&grpcurl)
            .args(extra)
            .args([&addr, method])
            .output()
            .expect("run grpcurl")
    };
    let ca = pki.ca.to_str().unwrap();
    let cert = pki.client_cert.to_str().unwrap();
    let key = pki.client_key.to_str().unwrap();
    let out = run(
        &["-cacert", ca, "-cert", cert, "-key", key],
        "grpc.health.v1.Health/Check",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("SERVING"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["-cacert", ca, "-cert", cert, "-key", key],
        "portwarden.v1.PortsService/List",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a client certificate the handshake fails; -plaintext gets nowhere either.
    // (grpcurl retries a failing dial until its connect timeout: keep that short.)
    let refused = run(
        &["-connect-timeout", "2", "-cacert", ca],
        "grpc.health.v1.Health/Check",
    );
    assert!(!refused.status.success());
    let plain = run(
        &["-connect-timeout", "2", "-plaintext"],
        "grpc.health.v1.Health/Check",
    );
    assert!(!plain.status.success());
    d.stop().await;
}

// The daemon runs in this process: the blocking child process needs a second worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_a_mutual_tls_daemon_with_flags_or_environment() {
    let (d, pki) = tls_daemon(true).await;
    let addr = format!("https://127.0.0.1:{}", d.addr.port());
    let cli = || {
        let mut c = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("PORTWARDEN_") {
                c.env_remove(k);
            }
        }
        c
    };
    let with_flags = cli()
        .args(["list", "--json", "--addr", &addr, "--ca"])
        .arg(&pki.ca)
        .arg("--client-cert")
        .arg(&pki.client_cert)
        .arg("--client-key")
        .arg(&pki.client_key)
        .output()
        .unwrap();
    assert!(
        with_flags.status.success(),
        "{}",
        String::from_utf8_lossy(&with_flags.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&with_flags.stdout).trim(), "[]");

    let with_env = cli()
        .args(["health"])
        .env("PORTWARDEN_ADDR", &addr)
        .env("PORTWARDEN_CA", &pki.ca)
        .env("PORTWARDEN_CLIENT_CERT", &pki.client_cert)
        .env("PORTWARDEN_CLIENT_KEY", &pki.client_key)
        .output()
        .unwrap();
    assert!(
        with_env.status.success(),
        "{}",
        String::from_utf8_lossy(&with_env.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&with_env.stdout).trim(), "SERVING");

    let no_cert = cli()
        .args(["health", "--addr", &addr, "--ca"])
        .arg(&pki.ca)
        .output()
        .unwrap();
    assert_eq!(no_cert.status.code(), Some(1));
    d.stop().await;
}

/// Runs `portwarden serve` with `args` (state and socket in `dir`): its exit code when it stops
/// on its own, None when it came up serving (it is then stopped), and its log.
fn serve_briefly(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = child::through_shell(bin(), &[]);
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cmd.arg("serve")
        .args(args)
        .args([
            "--netns-lock",
            &format!("@portwarden-test-{}-tls-{n}", std::process::id()),
        ])
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--unix-socket")
        .arg(dir.join("pw.sock"))
        .args(["--range", "26120-26125"]);
    let mut d = child::Spawned::start(cmd);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100)); // the log reader catches up
            return (status.code(), d.log());
        }
        if d.log().contains("portwarden is ready") {
            assert!(d.terminate().success());
            return (None, d.log());
        }
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn plaintext_on_all_interfaces_is_refused_unless_insecure_listen_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, log) = serve_briefly(dir.path(), &["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("config key 'listen'")
            && log.contains("0.0.0.0:0 is reachable from other hosts")
            && log.contains("--insecure-listen"),
        "{log}"
    );

    let (code, log) = serve_briefly(dir.path(), &["--listen", "0.0.0.0:0", "--insecure-listen"]);
    assert_eq!(code, None, "it serves: {log}");
    assert!(
        log.contains("serving plaintext gRPC to the network"),
        "{log}"
    );

    let pki = Pki::new(&dir.path().join("pki"), &[]);
    let (code, log) = serve_briefly(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            pki.server_cert.to_str().unwrap(),
            "--tls-key",
            pki.server_key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, None, "it serves with TLS: {log}");
    assert!(log.contains("(TLS)"), "{log}");
}

#[test]
fn a_bad_certificate_file_stops_the_daemon_with_exit_code_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), &[]);
    let (code, log) = serve_briefly(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            pki.server_key.to_str().unwrap(), // a key where the certificate belongs
            "--tls-key",
            pki.server_key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("'tls_cert'") && log.contains("no PEM certificate"),
        "{log}"
    );

    let (code, log) = serve_briefly(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-client-ca",
            pki.ca.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("'tls_client_ca'"), "{log}");
}
