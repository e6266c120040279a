//! Full reports: the seed's JSON shape, per-port checks on a warm snapshot, and the
//! `/network/stats` and `/network/port-exhaustion` payloads.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use portwarden::network::{
    io_stats, names, port_checks, port_exhaustion, run_report, system_snapshot, CheckStatus,
    NetworkConfig, OverallStatus, Report,
};

const SEED_CHECKS: [&str; 9] = [
    names::IPV4_AVAILABLE,
    names::IPV6_AVAILABLE,
    names::SOCKET_REUSE,
    names::FILE_DESCRIPTORS,
    names::NETWORK_INTERFACES,
    names::FIREWALL,
    names::TIME_WAIT_SOCKETS,
    names::CONNECTION_LIMITS,
    names::DNS_RESOLUTION,
];

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn run_report_produces_the_seed_shape_within_budget() {
    let cfg = NetworkConfig::default();
    let started = Instant::now();
    let report = run_report(&cfg, Some(free_port()));
    let elapsed = started.elapsed();
    println!(
        "run_report took {elapsed:?} (reported {:.2} ms)",
        report.duration_ms
    );
    assert!(elapsed < cfg.budget + Duration::from_millis(500));

    let json = report.to_seed_json();
    let object = json.as_object().expect("object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["checks", "critical_issues", "status", "warnings"]);
    assert!(["healthy", "warning", "critical"].contains(&json["status"].as_str().expect("status")));
    for name in SEED_CHECKS.iter().chain(&[
        names::PORT_EXHAUSTION,
        names::SSL_READINESS,
        names::LISTEN_OVERFLOWS,
    ]) {
        let check = &json["checks"][name];
        assert!(
            ["ok", "info", "warning", "critical"].contains(&check["status"].as_str().unwrap_or("")),
            "{name}: {check}"
        );
        assert!(check["note"].is_string(), "{name}: {check}");
    }
    assert_eq!(json["checks"]["ipv4_available"]["available"], true);
    assert_eq!(json["checks"]["network_interfaces"]["has_localhost"], true);
    assert_eq!(json["checks"]["firewall"]["can_bind"], true);
    assert_eq!(json["checks"]["connection_limits"]["source"], "netlink");
    assert_eq!(
        json["checks"]["dns_resolution"]["localhost_is_loopback"],
        true
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&json).unwrap_or_default()
    );
}

#[test]
fn overall_status_follows_the_worst_check_and_ignores_info() {
    let report = run_report(&NetworkConfig::default(), None);
    let worst = report
        .checks
        .iter()
        .map(|check| check.status)
        .max()
        .unwrap_or(CheckStatus::Ok);
    let expected = match worst {
        CheckStatus::Critical => OverallStatus::Critical,
        CheckStatus::Warning => OverallStatus::Warning,
        CheckStatus::Ok | CheckStatus::Info => OverallStatus::Healthy,
    };
    assert_eq!(report.status, expected);
    // ssl_readiness is info when TLS is not configured, and must not appear in any list.
    assert!(!report.warnings.contains(&names::SSL_READINESS.to_string()));
    let again = Report::from_checks(report.checks.clone(), Duration::ZERO);
    assert_eq!(again.critical_issues, report.critical_issues);
}

#[test]
fn time_wait_build_up_on_a_port_is_a_warning_in_the_report() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    // Server side closes first: TIME_WAIT lands on the listener's port (local end).
    for _ in 0..12 {
        let mut client = TcpStream::connect(address).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        drop(server);
        // Close only after the server's FIN arrived: a simultaneous close would leave both
        // ends in TIME_WAIT.
        let eof = std::io::Read::read(&mut client, &mut [0u8; 1]).expect("read");
        assert_eq!(eof, 0);
        drop(client);
    }
    std::thread::sleep(Duration::from_millis(50));
    let cfg = NetworkConfig::default();
    let snapshot = system_snapshot(&cfg);
    let checks = port_checks(&cfg, &snapshot, address.port());
    let time_wait = checks
        .iter()
        .find(|check| check.name == names::TIME_WAIT_SOCKETS)
        .expect("time_wait check");
    assert_eq!(
        time_wait.field("time_wait_count"),
        Some(&12.into()),
        "{time_wait:?}"
    );
    assert_eq!(time_wait.field("time_wait_local_port"), Some(&12.into()));
    assert_eq!(time_wait.status, CheckStatus::Warning);
}

#[test]
fn port_checks_on_a_warm_snapshot_are_fast() {
    let cfg = NetworkConfig::default();
    let snapshot = system_snapshot(&cfg);
    assert!(snapshot.is_fresh(&cfg.thresholds));
    let port = free_port();
    let mut timings = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let checks = port_checks(&cfg, &snapshot, port);
        timings.push(started.elapsed());
        assert_eq!(checks.len(), 2);
    }
    timings.sort();
    println!(
        "port_checks on a warm snapshot: median {:?}, max {:?} (snapshot took {:?})",
        timings[timings.len() / 2],
        timings[timings.len() - 1],
        snapshot.duration
    );
}

#[test]
fn io_stats_have_the_seed_stats_shape() {
    let stats = io_stats();
    let json = stats.to_seed_json();
    for key in [
        "bytes_sent",
        "bytes_recv",
        "packets_sent",
        "packets_recv",
        "errors_in",
        "errors_out",
    ] {
        assert!(json["io"][key].is_u64(), "{key}: {json}");
    }
    assert!(json["io"]["per_interface"]["lo"].is_object(), "{json}");
    assert!(json["connections"]["total"].as_u64().unwrap_or(0) > 0);
    assert!(json["connections"]["by_status"].is_object());
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
}

#[test]
fn port_exhaustion_has_the_seed_shape() {
    let json = port_exhaustion(&NetworkConfig::default()).to_seed_json();
    let (low, high) = {
        let text =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("range");
        let numbers: Vec<u64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        (numbers[0], numbers[1])
    };
    assert_eq!(json["ephemeral_ports_total"], high - low + 1);
    assert!(json["ephemeral_ports_used"].is_u64());
    assert!(json["usage_percent"].is_f64());
    assert!(json["recommendation"].is_string());
    assert!(["ok", "warning", "critical"].contains(&json["status"].as_str().unwrap_or("")));
}
