//! CheckPorts is bounded and discreet: a thousand ports in use cost one walk of the socket
//! table, not one per port, and who holds a port is told only to root and to that user.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::{cpu_ms, ChildDaemon};
use portwarden_client::proto::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_ports_in_use_cost_one_walk_of_the_socket_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "30200-30201", &[]);
    let listeners: Vec<TcpListener> = (0..1000)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    let ports: Vec<u32> = listeners
        .iter()
        .map(|l| u32::from(l.local_addr().unwrap().port()))
        .collect();
    let mut c = d.tcp().await;
    let before = cpu_ms(d.child.id());
    let results = c
        .check_ports(CheckPortsRequest {
            ports: ports.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let used = cpu_ms(d.child.id()) - before;
    eprintln!(
        "CheckPorts of {} ports in use: {used} ms of daemon CPU",
        ports.len()
    );
    assert_eq!(results.len(), ports.len());
    assert!(
        results.iter().all(|r| r.state == PortState::InUse as i32),
        "every one is in use"
    );
    let me = format!("pid {}", std::process::id());
    assert!(
        results.iter().all(|r| r.reason.contains(&me)),
        "root sees the holder"
    );
    assert!(
        used < 1000,
        "{used} ms of daemon CPU for 1,000 ports in use (one /proc walk, one dump)"
    );
    drop(listeners);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_listener_is_not_named() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root (to ask as uid 65534 too): skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "30210-30211", &[]);
    // Root listens on a managed port; both users ask for exactly that port.
    let _held = TcpListener::bind("0.0.0.0:30210").unwrap();
    let me = format!("pid {}", std::process::id());
    let body = r#"{"service":"wants","port":30210}"#;
    let as_root = rest_post(d.addr, "/api/ports/allocations", body, false);
    assert!(as_root.contains(" 409 "), "{as_root}");
    assert!(
        as_root.contains(&me),
        "root is told who holds it: {as_root}"
    );
    let as_nobody = rest_post(d.addr, "/api/ports/allocations", body, true);
    assert!(as_nobody.contains(" 409 "), "{as_nobody}");
    assert!(!as_nobody.contains(&me), "another user is not: {as_nobody}");
    assert!(as_nobody.contains("another user's process"), "{as_nobody}");
}

/// A listener of this test on port 2024 when it is free (as in `portwarden who 2024`), else on
/// any port, and its port.
fn listener_like_2024() -> (TcpListener, String) {
    let l = TcpListener::bind("0.0.0.0:2024")
        .or_else(|_| TcpListener::bind("0.0.0.0:0"))
        .unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    (l, port)
}

#[test]
fn as_root_a_listener_in_another_pid_namespace_is_said_to_be_there() {
    if !common::can_unshare() {
        return;
    }
    // The daemon in a PID namespace of its own, sharing this network namespace (a container
    // with the host's network): the test's own listener is in no /proc the daemon can read.
    let dir = tempfile::tempdir().unwrap();
    let mut unshare = Command::new("unshare");
    unshare.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        common::bin(),
    ]);
    let d = ChildDaemon::spawn_cmd(unshare, dir.path(), "31620-31624", &[]);
    let (_held, port) = listener_like_2024();
    let text = who_as_root(&d, &port);
    assert!(
        text.contains("used by a process in another PID namespace (uid 0) outside portwarden"),
        "{text}"
    );
    assert!(!text.contains("cannot see"), "{text}");
}

/// `portwarden who PORT` as root against `d`: what it printed, after it succeeded.
fn who_as_root(d: &ChildDaemon, port: &str) -> String {
    let out = common::cli(&format!("unix:{}", d.socket.display()), &["who", port]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn as_root_a_listener_the_daemon_may_not_read_is_said_to_be_unreadable() {
    if !common::is_root() {
        return;
    }
    // The daemon as uid 65534, root asking: root may see every holder, but the daemon cannot
    // read root's descriptors.
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn_as_nobody(dir.path(), "31625-31629", &[]);
    let (_held, port) = listener_like_2024();
    let text = who_as_root(&d, &port);
    assert!(
        text.contains(
            "used by a process of uid 0 (the daemon, uid 65534, may not read its descriptors: \
             that needs root or CAP_SYS_PTRACE) outside portwarden"
        ),
        "{text}"
    );
}

/// A POST over HTTP/1.1 from python3, as uid 65534 when `nobody`; the whole reply.
fn rest_post(addr: std::net::SocketAddr, path: &str, body: &str, nobody: bool) -> String {
    let drop = if nobody {
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)"
    } else {
        ""
    };
    let script = format!(
        r#"
import os, socket, encodings.idna
{drop}
body = {body:?}.encode()
s = socket.socket()
s.connect(("{ip}", {port}))
s.sendall(b"POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
print(out.decode())
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
