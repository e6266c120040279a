//! The firewall probe tells a taken port from a forbidden one.

#[path = "netcommon/mod.rs"]
mod common;

use std::net::TcpListener;

use portwarden::network::firewall::firewall;
use portwarden::network::CheckStatus;

use common::{drop_to_nobody, is_child, report_to_parent, run_test_in_child};

#[test]
fn a_port_held_by_a_listener_is_reported_in_use() {
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let result = firewall(port);
    assert_eq!(result.field("in_use"), Some(&true.into()), "{result:?}");
    assert_eq!(result.field("can_bind"), Some(&false.into()));
    assert_eq!(result.field("ipv4"), Some(&"in_use".into()));
    assert_eq!(result.status, CheckStatus::Info);
}

#[test]
fn a_free_port_can_be_bound() {
    // Find a free port, release it, then probe it.
    let port = TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let result = firewall(port);
    assert_eq!(result.field("can_bind"), Some(&true.into()), "{result:?}");
    assert_eq!(result.status, CheckStatus::Ok);
}

fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

#[test]
fn a_privileged_port_probed_without_privilege_is_blocked_and_critical() {
    let start = unprivileged_port_start();
    if start == 0 {
        eprintln!("every port is unprivileged on this host; nothing to test");
        return;
    }
    let port = start - 1;
    if is_child() {
        report_to_parent(&firewall(port).to_seed_json());
        return;
    }
    let result = run_test_in_child(
        "a_privileged_port_probed_without_privilege_is_blocked_and_critical",
        drop_to_nobody,
    );
    assert_eq!(result["status"], "critical", "{result}");
    assert_eq!(result["blocked"], true);
    assert_eq!(result["ipv4"], "blocked");
    assert_eq!(result["port"], port);
}
