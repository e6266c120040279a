//! Network checks gate allocation: a critical finding refuses it with the report attached (a
//! system-wide one blocks every port, a port-specific one makes the allocator try the next port);
//! warnings come back with the allocation.

mod common;

use std::path::{Path, PathBuf};

use common::ChildDaemon;
use portwarden_client::proto::*;
use rcgen::{CertificateParams, KeyPair};
use time::{Duration, OffsetDateTime};
use tonic::Code;
use tonic_types::StatusExt;

fn cert_files(dir: &Path, valid_for: Duration) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = OffsetDateTime::now_utc() - Duration::days(400);
    params.not_after = OffsetDateTime::now_utc() + valid_for;
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    (c, k)
}

fn req(service: &str) -> AllocateRequest {
    AllocateRequest {
        service: service.into(),
        ..Default::default()
    }
}

fn check<'a>(r: &'a NetworkReport, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_reported_with_the_allocation_and_refuses_only_when_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), Duration::days(-2));
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    // By default a certificate problem is not a reason to refuse a port: it comes back with
    // the allocation, critical.
    let d = ChildDaemon::spawn(dir.path(), "28000-28005", &tls);
    // The certificate also makes the TCP listener serve TLS: plaintext goes over the socket.
    let mut c = d.unix().await;
    let r = c.allocate(req("web")).await.unwrap().into_inner();
    assert_eq!(r.network_health(), OverallStatus::Critical);
    assert!(
        r.warnings.iter().any(|w| w.starts_with("ssl_readiness:")),
        "{:?}",
        r.warnings
    );
    drop(c);
    drop(d);

    // Listed among the blocking checks, it refuses, with the report attached.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), Duration::days(-2));
    let d = ChildDaemon::spawn(
        dir.path(),
        "28000-28005",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--blocking-checks",
            "ssl_readiness",
        ],
    );
    let mut c = d.unix().await;
    let e = c.allocate(req("web")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("ssl_readiness"), "{}", e.message());
    assert!(
        e.message().contains("fix: Renew the certificate"),
        "{}",
        e.message()
    );
    let details = e.get_error_details();
    let pf = details.precondition_failure().expect("PreconditionFailure");
    assert!(pf
        .violations
        .iter()
        .any(|v| v.r#type == "NETWORK" && v.subject == "ssl_readiness"));
    let info = details.error_info().expect("ErrorInfo with the report");
    assert_eq!(info.reason, "NETWORK_CRITICAL");
    let report: serde_json::Value = serde_json::from_str(&info.metadata["report"]).unwrap();
    assert_eq!(report["status"], "critical");
    assert_eq!(report["checks"]["ssl_readiness"]["status"], "critical");
    assert!(common::list(&mut c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_come_back_with_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), Duration::days(20));
    let d = ChildDaemon::spawn(
        dir.path(),
        "28010-28015",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // The certificate also makes the TCP listener serve TLS: plaintext goes over the socket.
    let mut c = d.unix().await;
    let r = c.allocate(req("web")).await.unwrap().into_inner();
    let a = r.allocation.clone().unwrap();
    assert!(
        r.warnings.iter().any(|w| w.starts_with("ssl_readiness:")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.network_health(), OverallStatus::Warning);
    assert_eq!(a.network_health(), OverallStatus::Warning);
    let report = r
        .network_report
        .expect("the report comes with the allocation");
    assert_eq!(report.status, OverallStatus::Warning as i32);
    assert!(report.warnings.contains(&"ssl_readiness".to_string()));
    let fw = check(&report, "firewall");
    let port = fw.fields.as_ref().unwrap().fields["port"].kind.clone();
    assert_eq!(
        port,
        Some(prost_types::value::Kind::NumberValue(f64::from(a.port)))
    );
    assert_eq!(fw.status, CheckStatus::Ok as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_port_is_skipped_and_a_range_of_only_blocked_ports_is_refused() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root to start the daemon as an unprivileged user: skipped");
        return;
    }
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start < 2 {
        eprintln!("every port is unprivileged here: no EACCES to provoke; skipped");
        return;
    }
    let (blocked, open) = (start - 1, start);
    let dir = tempfile::tempdir().unwrap();
    let ranges = format!("{blocked},{open}");
    let d = ChildDaemon::spawn_as_nobody(dir.path(), &ranges, &["--quarantine", "0s"]);
    let mut c = d.tcp().await;
    // The lower port comes first in LRU order, is blocked, and is skipped.
    let a = common::allocate(&mut c, req("first")).await;
    assert_eq!(a.port, u32::from(open));
    let e = c.allocate(req("second")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let details = e.get_error_details();
    let pf = details.precondition_failure().expect("PreconditionFailure");
    assert_eq!(pf.violations[0].r#type, "FIREWALL");
    assert_eq!(pf.violations[0].subject, format!("port {blocked}"));
    let info = details.error_info().expect("the report");
    let report: serde_json::Value = serde_json::from_str(&info.metadata["report"]).unwrap();
    assert_eq!(report["checks"]["firewall"]["status"], "critical");
    assert_eq!(report["checks"]["firewall"]["blocked"], true);
    // Asking for it by number says the same.
    let e = c
        .allocate(AllocateRequest {
            port: Some(u32::from(blocked)),
            ..req("third")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    drop(c);
    drop(d);

    // Without `firewall` among the blocking checks, a port this daemon may not bind is handed
    // out (a privileged service may bind it), reported critical.
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn_as_nobody(
        dir.path(),
        &blocked.to_string(),
        &["--blocking-checks", "ipv4_available,network_interfaces"],
    );
    let mut c = d.tcp().await;
    let r = c.allocate(req("privileged")).await.unwrap().into_inner();
    assert_eq!(r.allocation.as_ref().unwrap().port, u32::from(blocked));
    assert_eq!(r.network_health(), OverallStatus::Critical);
    assert!(
        r.warnings.iter().any(|w| w.starts_with("firewall:")),
        "{:?}",
        r.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_rpcs_report_real_state() {
    use portwarden_client::proto::network_service_client::NetworkServiceClient;
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "28020-28021", &[]);
    let channel = portwarden_client::connect(&portwarden_client::Target::Tcp(format!(
        "http://{}",
        d.addr
    )))
    .await
    .unwrap();
    let mut n = NetworkServiceClient::new(channel);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let report = n
        .health(HealthRequest {
            port: Some(u32::from(port)),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    for name in [
        "ipv4_available",
        "ipv6_available",
        "socket_reuse",
        "file_descriptors",
        "network_interfaces",
        "firewall",
        "time_wait_sockets",
        "connection_limits",
        "dns_resolution",
        "port_exhaustion",
        "ssl_readiness",
        "listen_overflows",
    ] {
        check(&report, name);
    }
    let fw = check(&report, "firewall").fields.clone().unwrap();
    assert_eq!(
        fw.fields["in_use"].kind,
        Some(prost_types::value::Kind::BoolValue(true))
    );
    assert_eq!(
        check(&report, "ssl_readiness").status,
        CheckStatus::Info as i32,
        "not configured: info"
    );
    let e = n
        .health(HealthRequest { port: Some(70000) })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let stats = n.stats(StatsRequest {}).await.unwrap().into_inner();
    let conns = stats.connections.unwrap();
    assert!(
        conns.by_status.get("LISTEN").copied().unwrap_or(0) >= 2,
        "our listener and the daemon's"
    );
    assert!(stats.interfaces.iter().any(|i| i.name == "lo"));
    let ex = n
        .port_exhaustion(PortExhaustionRequest {})
        .await
        .unwrap()
        .into_inner()
        .check
        .unwrap();
    assert!(ex
        .fields
        .unwrap()
        .fields
        .contains_key("ephemeral_ports_total"));
    let tls = n
        .tls_readiness(TlsReadinessRequest {})
        .await
        .unwrap()
        .into_inner()
        .check
        .unwrap();
    assert_eq!(tls.name, "ssl_readiness");
    drop(listener);
}

/// `ss -tanH state time-wait '( sport = :P or dport = :P )'`: TIME_WAIT sockets with `port` at
/// either end, as the reference.
fn ss_time_wait_on(port: u16) -> u64 {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = std::process::Command::new("ss")
        .args(["-tanH", "state", "time-wait", &filter])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

/// `n` connections to `port` whose server side closes first: TIME_WAIT lands on `port`. The
/// client closes only once it has read the server's FIN, so no close is simultaneous (that
/// would put both ends in TIME_WAIT).
fn time_wait_on(port: u16, n: usize) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    for _ in 0..n {
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        assert_eq!(
            client.read(&mut [0u8; 1]).unwrap(),
            0,
            "EOF: the server's FIN arrived"
        );
        drop(client);
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_wait_build_up_on_a_port_is_counted_like_ss_and_warned_on_allocation() {
    // A port without leftovers from an earlier run (TIME_WAIT lasts 60 s).
    let port = (28030..28100)
        .find(|p| ss_time_wait_on(*p) == 0)
        .expect("a quiet port");
    time_wait_on(port, 15);
    let expected = ss_time_wait_on(port);
    assert_eq!(expected, 15, "ss sees the TIME_WAIT sockets we made");
    // The daemon starts after them, so its first snapshot already holds them.
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), &format!("{port}-{}", port + 1), &[]);
    let mut c = d.tcp().await;
    let r = c
        .allocate(AllocateRequest {
            port: Some(u32::from(port)),
            ..req("grace_backend")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.allocation.as_ref().unwrap().port,
        u32::from(port),
        "TIME_WAIT does not make a port unusable"
    );
    assert_eq!(r.network_health(), OverallStatus::Warning);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("time_wait_sockets:")),
        "{:?}",
        r.warnings
    );
    let report = r.network_report.unwrap();
    let tw = check(&report, "time_wait_sockets");
    assert_eq!(tw.status, CheckStatus::Warning as i32);
    // Logged in the seed's words.
    d.wait_for_log("[NETWORK-HARDENING] Status: warning (0 critical, 1 warnings)")
        .unwrap();
    d.wait_for_log(&format!(
        "[PORT-MANAGER] Network warnings for port {port}: ['time_wait_sockets']"
    ))
    .unwrap();
    d.wait_for_log(&format!(
        "[PORT-MANAGER] ✅ Allocated port {port} for grace_backend"
    ))
    .unwrap();
    let count = tw.fields.as_ref().unwrap().fields["time_wait_count"]
        .kind
        .clone();
    assert_eq!(
        count,
        Some(prost_types::value::Kind::NumberValue(expected as f64))
    );

    // NetworkService.Health with the port counts afresh, and agrees with ss.
    use portwarden_client::proto::network_service_client::NetworkServiceClient;
    let channel = portwarden_client::connect(&portwarden_client::Target::Tcp(format!(
        "http://{}",
        d.addr
    )))
    .await
    .unwrap();
    let health = NetworkServiceClient::new(channel)
        .health(HealthRequest {
            port: Some(u32::from(port)),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    let tw = check(&health, "time_wait_sockets").fields.clone().unwrap();
    assert_eq!(
        tw.fields["time_wait_count"].kind,
        Some(prost_types::value::Kind::NumberValue(
            ss_time_wait_on(port) as f64
        ))
    );
}
