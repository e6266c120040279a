//! The test pool: the portserver endpoint and `--pool test` draw from a range of their own, so a
//! test suite never runs the services' ports dry, and a released port there is reusable as soon
//! as the kernel holds no socket on it (TIME_WAIT included) instead of after the quarantine.

mod common;
#[path = "support/http.rs"]
mod http;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixStream};
use std::process::Output;
use std::time::Duration;

use common::{cli, ChildDaemon};

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON")
}

fn allocate(addr: &str, args: &[&str]) -> Output {
    let mut all = vec!["allocate"];
    all.extend_from_slice(args);
    all.push("--json");
    cli(addr, &all)
}

/// A daemon with service range `range`, test pool `test` and a 60 s quarantine. The ranges lie
/// below the kernel's ephemeral range (32768-60999 by default): a pool of two ports in it would
/// rest whenever another test's client socket happened to get one of them.
fn daemon(dir: &std::path::Path, range: &str, test: &str, lock: &str) -> ChildDaemon {
    ChildDaemon::spawn(
        dir,
        range,
        &[
            "--test-range",
            test,
            "--quarantine",
            "60s",
            "--netns-lock",
            lock,
        ],
    )
}

fn lock(tag: &str) -> String {
    format!("@portwarden-test-{}-pool-{tag}", std::process::id())
}

#[test]
fn the_portserver_endpoint_and_pool_test_draw_from_the_test_pool() {
    let dir = tempfile::tempdir().unwrap();
    let lock = lock("draw");
    let d = daemon(dir.path(), "25000-25001", "25002-25009", &lock);
    let addr = format!("unix:{}", d.socket.display());

    // portpicker's request, on the default endpoint beside the claim.
    let name = format!("{}-portserver", &lock[1..]);
    let mut s = UnixStream::connect_addr(&UnixAddr::from_abstract_name(name.as_bytes()).unwrap())
        .expect("the portserver endpoint is on by default");
    s.write_all(format!("{}\n", std::process::id()).as_bytes())
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let port: u16 = answer.trim().parse().unwrap();
    assert!((25002..=25009).contains(&port), "portserver port {port}");

    let test = json(&allocate(&addr, &["t", "--pool", "test"]));
    let p = test["allocation"]["port"].as_u64().unwrap();
    assert!((25002..=25009).contains(&p), "{test}");
    let service = json(&allocate(&addr, &["svc"]));
    let p = service["allocation"]["port"].as_u64().unwrap();
    assert!((25000..=25001).contains(&p), "{service}");
}

#[test]
fn a_released_test_port_is_reusable_at_once_unless_the_kernel_still_holds_a_socket_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), "25010-25011", "25012-25013", &lock("exact"));
    let addr = format!("unix:{}", d.socket.display());
    let a = json(&allocate(&addr, &["first", "--pool", "test"]))["allocation"]["port"]
        .as_u64()
        .unwrap();
    let b = json(&allocate(&addr, &["second", "--pool", "test"]))["allocation"]["port"]
        .as_u64()
        .unwrap();
    assert_ne!(a, b);

    // No socket on `a`: another service gets it right after its release, 60 s quarantine or not.
    assert!(cli(&addr, &["release", &a.to_string()]).status.success());
    let again = json(&allocate(&addr, &["third", "--pool", "test"]))["allocation"]["port"]
        .as_u64()
        .unwrap();
    assert_eq!(again, a, "the port with no socket left is handed out again");

    // `b` served a connection and closed first: its TIME_WAIT socket keeps it resting.
    {
        let listener = TcpListener::bind(("127.0.0.1", b as u16)).unwrap();
        let client = TcpStream::connect(("127.0.0.1", b as u16)).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server); // the server's side closes first: TIME_WAIT on port b
        std::thread::sleep(Duration::from_millis(50));
        drop(client);
    }
    assert!(cli(&addr, &["release", &b.to_string()]).status.success());
    let refused = allocate(&addr, &["fourth", "--pool", "test"]);
    assert_eq!(refused.status.code(), Some(5), "exhausted");
    let err: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with("no free port in the test pool 25012-25013 (2 ports)")
            && message.contains("1 resting after release"),
        "{message}"
    );

    // The service pool keeps its quarantine as configured.
    let s = json(&allocate(&addr, &["svc"]))["allocation"]["port"]
        .as_u64()
        .unwrap();
    assert!(cli(&addr, &["release", &s.to_string()]).status.success());
    let other = json(&allocate(&addr, &["svc2"]))["allocation"]["port"]
        .as_u64()
        .unwrap();
    assert_ne!(other, s, "a service port rests for the quarantine");
}

#[test]
fn a_test_pool_that_overlaps_the_service_ranges_is_refused_at_start() {
    let out = std::process::Command::new(common::bin())
        .args([
            "serve",
            "--range",
            "25020-25030",
            "--test-range",
            "25030-25040",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'test_range'") && err.contains("must not share ports"),
        "{err}"
    );
}

#[test]
fn status_reads_the_test_pool_the_same_over_rest_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), "25040-25041", "25042-25049", &lock("status"));
    let addr = format!("unix:{}", d.socket.display());
    json(&allocate(&addr, &["t", "--pool", "test"]));
    let cli = cli(&addr, &["status", "--json"]);
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).expect("status --json");
    let rest = http::get(&http::Addr::Tcp(d.addr), "/api/ports/status").json();
    assert_eq!(cli["test_pool"], rest["test_pool"], "CLI {cli} REST {rest}");
    assert_eq!(rest["test_pool"]["port_range"], "25042-25049");
    assert_eq!(rest["test_pool"]["allocated"], 1);
}
