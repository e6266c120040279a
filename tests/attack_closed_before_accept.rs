//! A loopback TCP caller is named by the kernel's socket table. A client that sends its request
//! and closes before the daemon accepts leaves behind a socket the kernel reports as uid 0; that
//! request must not run as root. Here the daemon is stopped (SIGSTOP) while an unprivileged
//! account of the test's own queues requests on real connections and closes them (FIN, and reset
//! with SO_LINGER 0), so every one is accepted after its client is gone.

mod common;

#[path = "support/attacker.rs"]
mod attacker;

use std::time::Duration;

use attacker::Attacker;
use common::{cli, ChildDaemon};

/// Sends each request on its own connection and closes it at once, as the attacker.
fn send_and_close(attacker: &Attacker, addr: std::net::SocketAddr, requests: &[String]) {
    let script = format!(
        r#"
reqs = {requests:?}
for r in reqs:
    for reset in (False, True):
        s = socket.create_connection(("{ip}", {port}))
        s.sendall(r.encode())
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    let status = attacker.python(&script).status().expect("python3");
    assert!(status.success(), "the attacker's client failed");
}

#[test]
fn a_request_whose_client_closed_before_accept_does_not_run_as_root() {
    let Some(attacker) = Attacker::create("cba") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29960-29969", &["--quarantine", "0s"]);
    let tcp = format!("http://{}", d.addr);
    let roots = cli(&tcp, &["allocate", "roots", "--json"]);
    assert!(roots.status.success());
    let roots: serde_json::Value = serde_json::from_slice(&roots.stdout).unwrap();
    let roots = &roots["allocation"];
    assert_eq!(roots["owner_uid"], 0, "{roots}");
    let port = roots["port"].as_u64().unwrap();

    let host = d.addr;
    let body = r#"{"service":"stolen"}"#;
    let requests = [
        format!(
            "DELETE /api/ports/allocations/{port} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "POST /api/ports/allocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    ];
    let pid = d.child.id() as i32;
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    send_and_close(&attacker, d.addr, &requests);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };

    d.wait_for_log("closing a loopback connection whose client closed it before it was accepted")
        .expect("the unserved connections are logged");
    std::thread::sleep(Duration::from_millis(300));
    let list = cli(&tcp, &["list", "--json"]);
    assert!(list.status.success(), "root is still served");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let all = list.as_array().expect("a list");
    assert!(
        all.iter()
            .any(|a| a["port"] == port && a["service"] == "roots"),
        "root's allocation was released by the attacker: {list}"
    );
    assert!(
        !all.iter().any(|a| a["service"] == "stolen"),
        "the attacker's request was served: {list}"
    );
}
