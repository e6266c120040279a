//! DNS rebinding: a web page on rebind.evil.example points its own name at 127.0.0.1 and then
//! reads the daemon as a same-origin page would, its requests carrying `Host:
//! rebind.evil.example`. Every read that names services, purposes, labels, `started_by` or uids
//! must be refused for such a Host over TCP; loopback names and the address the client
//! connected to still work, and over the Unix socket (which no page can reach) any Host does.
//! The requests are sent by an unprivileged account of the test's own, over real sockets.

mod common;

#[path = "support/attacker.rs"]
mod attacker;
#[path = "support/http.rs"]
mod http1;

use attacker::Attacker;
use common::{cli, ChildDaemon};

/// Reads each path with each Host as the attacker: the first 64 KiB of each answer, head
/// included (an event stream is read for one second).
fn read_as(
    attacker: &Attacker,
    addr: std::net::SocketAddr,
    asks: &[(&str, String)],
) -> Vec<String> {
    let asks: Vec<(String, String)> = asks
        .iter()
        .map(|(path, host)| (path.to_string(), host.clone()))
        .collect();
    let script = format!(
        r#"
for path, host in {asks:?}:
    s = socket.create_connection(("{ip}", {port}), timeout=5)
    s.settimeout(1.0)
    s.sendall(("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode())
    got = b""
    try:
        while len(got) < 65536:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    print(got.hex(), flush=True)
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    let out = attacker.python(&script).output().expect("python3");
    assert!(
        out.status.success(),
        "the attacker's client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|hex| {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

fn status_of(reply: &str) -> u16 {
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn reads_for_a_rebound_host_name_are_refused_and_leak_nothing() {
    let Some(attacker) = Attacker::create("dns") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "32000-32009", &["--quarantine", "0s"]);
    let tcp = format!("http://{}", d.addr);
    let secret = cli(
        &tcp,
        &[
            "allocate",
            "secretsvc",
            "--purpose",
            "payroll-db",
            "--label",
            "team=finance",
            "--json",
        ],
    );
    assert!(secret.status.success(), "{secret:?}");

    let paths = [
        "/api/ports/allocations",
        "/api/ports/allocations/32000",
        "/metrics",
        "/api/ports/watchdog/events?snapshot=true",
        "/api/ports/health-check",
        "/api/ports/status",
        "/api/ports/network/health",
    ];
    let evil = [
        "rebind.evil.example".to_string(),
        format!("rebind.evil.example:{}", d.addr.port()),
        "localhost.evil.example".to_string(),
    ];
    let asks: Vec<(&str, String)> = paths
        .iter()
        .flat_map(|p| evil.iter().map(move |h| (*p, h.clone())))
        .collect();
    let replies = read_as(&attacker, d.addr, &asks);
    assert_eq!(replies.len(), asks.len());
    for ((path, host), reply) in asks.iter().zip(&replies) {
        assert_eq!(
            status_of(reply),
            421,
            "GET {path} with Host {host} must be refused:\n{reply}"
        );
        for leak in ["secretsvc", "payroll-db", "finance", "owner_uid"] {
            assert!(
                !reply.contains(leak),
                "GET {path} with Host {host} leaked '{leak}':\n{reply}"
            );
        }
        assert!(
            reply.contains("Host") && reply.contains("localhost"),
            "the refusal names the Host header and the rule:\n{reply}"
        );
    }

    // Loopback names and the address the client connected to are served.
    let good = [
        "localhost".to_string(),
        format!("localhost:{}", d.addr.port()),
        d.addr.to_string(),
        "127.0.0.1".to_string(),
        "127.1.2.3:7070".to_string(),
        "[::1]:7070".to_string(),
    ];
    let asks: Vec<(&str, String)> = good
        .iter()
        .map(|h| ("/api/ports/allocations", h.clone()))
        .collect();
    for ((_, host), reply) in asks.iter().zip(read_as(&attacker, d.addr, &asks)) {
        assert_eq!(status_of(&reply), 200, "Host {host}:\n{reply}");
        assert!(reply.contains("secretsvc"), "Host {host}:\n{reply}");
    }

    // No page can reach the Unix socket: any Host is served there.
    let unix = http1::Addr::Unix(d.socket.clone());
    let r = http1::request(
        &unix,
        "GET",
        "/api/ports/allocations",
        &[("Host", "rebind.evil.example")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // gRPC clients are not web pages: the CLI over TCP still lists.
    let list = cli(&tcp, &["list", "--json"]);
    assert!(list.status.success(), "{list:?}");
    d.wait_for_log("Host").expect("the refusals are logged");
}
