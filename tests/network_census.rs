//! The socket census counts exactly what `ss -tan` shows, per port and in total, from netlink
//! and from the /proc fallback alike.

#[path = "netcommon/mod.rs"]
mod common;

use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portwarden::network::census::take_census_from;
use portwarden::network::{listening_ports, take_census, CensusRequest, CensusSource, TcpState};

use common::{ss_counts, ss_counts_on_port, ss_total};

/// Tests in this binary that create or destroy sockets run one at a time, so system-wide totals
/// only drift by what other processes do.
static SOCKET_CHURN: Mutex<()> = Mutex::new(());

const N: usize = 25;

/// A listener on 127.0.0.1:0 on a port no other socket mentions: earlier connections can leave
/// TIME_WAIT sockets on a port number the kernel hands out again (up to 20 tries).
fn quiet_listener() -> TcpListener {
    for _ in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test listener");
        let port = listener.local_addr().expect("listener address").port();
        let census = take_census(CensusRequest::on_port(port)).expect("census");
        if census.total() == 1 {
            return listener;
        }
    }
    panic!("20 ports in a row had other sockets on them");
}

/// A listener on 127.0.0.1:0 with `n` accepted connections: (listener, clients, servers).
fn connected_pairs(n: usize) -> (TcpListener, Vec<TcpStream>, Vec<TcpStream>) {
    let listener = quiet_listener();
    let address = listener.local_addr().expect("listener address");
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(TcpStream::connect(address).expect("connect"));
        servers.push(listener.accept().expect("accept").0);
    }
    (listener, clients, servers)
}

fn ss_state(counts: &std::collections::BTreeMap<String, u64>, name: &str) -> u64 {
    counts.get(name).copied().unwrap_or(0)
}

/// Polls until `done` is true or 3 s have passed.
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn established_connections_on_a_port_match_ss() {
    let _quiet = SOCKET_CHURN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (listener, _clients, _servers) = connected_pairs(N);
    let port = listener.local_addr().expect("address").port();

    let census = take_census(CensusRequest::on_port(port)).expect("census");
    let ss = ss_counts_on_port(port);

    assert_eq!(census.source, CensusSource::Netlink);
    // Each connection is two sockets on loopback: the client's and the accepted one.
    assert_eq!(census.count(TcpState::Established), 2 * N as u64);
    assert_eq!(census.count(TcpState::Established), ss_state(&ss, "ESTAB"));
    assert_eq!(census.count(TcpState::Listen), 1);
    assert_eq!(census.count(TcpState::Listen), ss_state(&ss, "LISTEN"));
    assert_eq!(census.total(), ss.values().sum::<u64>());
    // Local port == listener port: the listener and the N accepted sockets.
    assert_eq!(census.count_local(TcpState::Established), N as u64);
}

#[test]
fn time_wait_sockets_on_a_port_match_ss_and_move_by_n() {
    let _quiet = SOCKET_CHURN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (listener, clients, servers) = connected_pairs(N);
    let port = listener.local_addr().expect("address").port();
    let before = take_census(CensusRequest::on_port(port)).expect("census before");
    assert_eq!(before.count(TcpState::TimeWait), 0);

    // The client closes first, so the client side ends in TIME_WAIT once the server closes.
    drop(clients);
    wait_until(|| {
        take_census(CensusRequest::on_port(port))
            .map(|census| census.count(TcpState::CloseWait) == N as u64)
            .unwrap_or(false)
    });
    drop(servers);
    wait_until(|| {
        take_census(CensusRequest::on_port(port))
            .map(|census| census.count(TcpState::TimeWait) == N as u64)
            .unwrap_or(false)
    });

    let after = take_census(CensusRequest::on_port(port)).expect("census after");
    let ss = ss_counts_on_port(port);
    assert_eq!(after.count(TcpState::TimeWait), N as u64);
    assert_eq!(
        after.count(TcpState::TimeWait) - before.count(TcpState::TimeWait),
        N as u64
    );
    assert_eq!(after.count(TcpState::TimeWait), ss_state(&ss, "TIME-WAIT"));
    // The TIME_WAIT sockets are the clients': the port is their remote end.
    assert_eq!(after.count_local(TcpState::TimeWait), 0);
    assert_eq!(after.total(), ss.values().sum::<u64>());
}

#[test]
fn system_totals_match_ss_within_concurrent_noise() {
    let _quiet = SOCKET_CHURN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (_listener, _clients, _servers) = connected_pairs(N);
    // Other processes on the host may open or close sockets between the three readings; bracket
    // the census between two ss runs and allow a small margin for that noise.
    let tolerance = 8;
    let ss_before = ss_counts(None);
    let census = take_census(CensusRequest::FULL).expect("census");
    let ss_after = ss_counts(None);
    for (state, ss_name) in [
        (TcpState::Established, "ESTAB"),
        (TcpState::TimeWait, "TIME-WAIT"),
        (TcpState::Listen, "LISTEN"),
    ] {
        let low = ss_state(&ss_before, ss_name).min(ss_state(&ss_after, ss_name));
        let high = ss_state(&ss_before, ss_name).max(ss_state(&ss_after, ss_name));
        let ours = census.count(state);
        assert!(
            ours + tolerance >= low && ours <= high + tolerance,
            "{ss_name}: census {ours}, ss between {low} and {high}"
        );
    }
    let total_low = ss_before.values().sum::<u64>().min(ss_after.values().sum());
    let total_high = ss_before.values().sum::<u64>().max(ss_after.values().sum());
    assert!(
        census.total() + tolerance >= total_low && census.total() <= total_high + tolerance,
        "total: census {}, ss between {total_low} and {total_high}",
        census.total()
    );
    assert!(census.count(TcpState::Established) >= 2 * N as u64);
    let _ = ss_total;
}

#[test]
fn proc_fallback_counts_the_same_sockets_as_netlink() {
    let _quiet = SOCKET_CHURN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (listener, _clients, _servers) = connected_pairs(N);
    let port = listener.local_addr().expect("address").port();
    let netlink =
        take_census_from(CensusSource::Netlink, CensusRequest::on_port(port)).expect("netlink");
    let proc = take_census_from(CensusSource::Proc, CensusRequest::on_port(port)).expect("proc");
    assert_eq!(proc.source, CensusSource::Proc);
    for state in TcpState::ALL {
        assert_eq!(proc.count(state), netlink.count(state), "{state:?}");
    }
    assert_eq!(proc.count(TcpState::Established), 2 * N as u64);
}

#[test]
fn listening_ports_include_ipv4_and_ipv6_listeners() {
    let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
    let v6 = TcpListener::bind("[::1]:0").expect("bind v6");
    let ports = listening_ports().expect("listening ports");
    assert!(ports.contains(&v4.local_addr().expect("addr").port()));
    assert!(ports.contains(&v6.local_addr().expect("addr").port()));
    let (_connected_listener, _clients, _servers) = connected_pairs(1);
    // Only LISTEN sockets: ports of established client sockets are not listed.
    let client_port = _clients[0].local_addr().expect("addr").port();
    assert!(!listening_ports()
        .expect("listening ports")
        .contains(&client_port));
}
