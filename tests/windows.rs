//! portwarden on Windows, end to end: the real daemon binary as a child process on 127.0.0.1,
//! its state in a temp dir, real gRPC clients and the real CLI. Run by `scripts/test-windows`
//! (under Wine on Linux); compiled only for Windows.
#![cfg(windows)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portwarden::network::names;
use portwarden::ports::identify_owner;
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{AllocateRequest, GetRequest, ListRequest, ReleaseRequest};
use portwarden_client::{connect, Target};
use tonic::transport::Channel;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_portwarden");

/// A managed range of `size` ports no other test of this run uses (tests run in parallel).
fn range(test: u16, size: u16) -> (u16, u16) {
    let base = 20_000 + (std::process::id() % 500) as u16 * 40 + test * 5;
    (base, base + size - 1)
}

/// The daemon binary, serving on 127.0.0.1 (a port the system picks) with `state`.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start(state: &Path, (low, high): (u16, u16)) -> Daemon {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--watchdog-interval",
                "1s",
            ])
            .arg("--state")
            .arg(state)
            .args(["--range", &format!("{low}-{high}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("portwarden.exe starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // The log goes on after start-up: keep draining it so the daemon never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("daemon: {line}");
                if let Some(rest) = line.split("listening on tcp ").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(Ok(addr));
                } else if line.contains("ERROR") {
                    let _ = tx.send(Err(line));
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(addr)) => addr.parse().expect("an address in the log"),
            Ok(Err(line)) => panic!("the daemon failed to start: {line}"),
            Err(_) => {
                let _ = child.kill();
                panic!("the daemon did not say where it listens within 60 s");
            }
        };
        Daemon { child, addr }
    }

    async fn client(&self) -> PortsServiceClient<Channel> {
        let channel = connect(&Target::Tcp(format!("http://{}", self.addr)))
            .await
            .expect("gRPC over TCP");
        PortsServiceClient::new(channel)
    }

    /// Ends the daemon as a crash would (TerminateProcess): nothing is flushed at exit.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn allocate(service: &str) -> AllocateRequest {
    AllocateRequest {
        service: service.into(),
        purpose: "windows test".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_grpc_on_tcp_and_allocates_and_releases() {
    let dir = tempfile::tempdir().unwrap();
    let (low, high) = range(0, 5);
    let daemon = Daemon::start(&dir.path().join("state.db"), (low, high));
    let mut ports = daemon.client().await;

    let granted = ports.allocate(allocate("web")).await.unwrap().into_inner();
    let port = granted.allocation.as_ref().unwrap().port;
    assert!((u32::from(low)..=u32::from(high)).contains(&port), "{port}");
    assert_eq!(granted.lease_token.len(), 32, "a random token");
    let got = ports.get(GetRequest { port }).await.unwrap().into_inner();
    assert_eq!(got.allocation.unwrap().service, "web");

    // Over TCP nobody's identity is known: the token is the proof.
    let refused = ports
        .release(ReleaseRequest {
            port,
            lease_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    ports
        .release(ReleaseRequest {
            port,
            lease_token: granted.lease_token,
        })
        .await
        .unwrap();
    let left = ports
        .list(ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(left.allocations.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn allocations_survive_a_crash_and_one_daemon_owns_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let daemon = Daemon::start(&state, range(1, 5));
    let port = daemon
        .client()
        .await
        .allocate(allocate("db"))
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap()
        .port;

    // A second daemon on the same state is refused while the first runs.
    let second = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("locked by another portwarden daemon"),
        "{said}"
    );

    // The daemon's process is identified by sysinfo, and its end is seen.
    let pid = daemon.child.id() as i32;
    let owner = identify_owner(pid).expect("the daemon can own a port");
    // (Liveness is the domain's own type; its Debug form names the verdict.)
    assert_eq!(format!("{:?}", owner.liveness()), "Alive");
    daemon.kill();
    let after = format!("{:?}", owner.liveness());
    assert!(after.starts_with("Dead("), "{after}");

    let restarted = Daemon::start(&state, range(1, 5));
    let got = restarted
        .client()
        .await
        .get(GetRequest { port })
        .await
        .expect("the acknowledged allocation is still there")
        .into_inner();
    assert_eq!(got.allocation.unwrap().service, "db");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_something_listens_on_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (low, high) = range(2, 3);
    let squatter =
        TcpListener::bind(("127.0.0.1", low)).expect("the first port of the range is free");
    let daemon = Daemon::start(&dir.path().join("state.db"), (low, high));
    let mut ports = daemon.client().await;

    let refused = ports
        .allocate(AllocateRequest {
            port: Some(u32::from(low)),
            ..allocate("asked")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    let any = ports.allocate(allocate("any")).await.unwrap().into_inner();
    assert_ne!(any.allocation.unwrap().port, u32::from(low));
    drop(squatter);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_that_exits_loses_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("state.db"), range(3, 5));
    let mut ports = daemon.client().await;
    // Any process will do as the owner: a second daemon, on its own state, that we then end.
    let other_dir = tempfile::tempdir().unwrap();
    let owner = Daemon::start(&other_dir.path().join("state.db"), range(4, 5));
    let port = ports
        .allocate(AllocateRequest {
            pid: Some(owner.child.id() as i32),
            ..allocate("owned")
        })
        .await
        .unwrap()
        .into_inner()
        .allocation
        .unwrap()
        .port;
    owner.kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match ports.get(GetRequest { port }).await {
            Err(status) if status.code() == Code::NotFound => break,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("port {port} was not reclaimed: {other:?}"),
        }
    }
}

#[test]
fn check_json_reports_every_check_with_a_status() {
    let (port, _) = range(5, 1);
    let out = Command::new(BIN)
        .args(["check", "--port", &port.to_string(), "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    for name in [
        names::IPV4_AVAILABLE,
        names::IPV6_AVAILABLE,
        names::SOCKET_REUSE,
        names::FILE_DESCRIPTORS,
        names::NETWORK_INTERFACES,
        names::FIREWALL,
        names::TIME_WAIT_SOCKETS,
        names::CONNECTION_LIMITS,
        names::DNS_RESOLUTION,
        names::PORT_EXHAUSTION,
        names::SSL_READINESS,
        names::LISTEN_OVERFLOWS,
    ] {
        let status = report["checks"][name]["status"].as_str();
        assert!(
            matches!(status, Some("ok" | "info" | "warning" | "critical")),
            "{name}: {status:?} in {text}"
        );
    }
    let checks = &report["checks"];
    assert_eq!(checks[names::FILE_DESCRIPTORS]["platform"], "Windows");
    assert_eq!(checks[names::CONNECTION_LIMITS]["source"], "netstat2");
    assert_eq!(
        checks[names::SOCKET_REUSE]["note"],
        "SO_REUSEPORT not available (Windows)"
    );
    assert_eq!(checks[names::FIREWALL]["can_bind"], true);
    assert!(checks[names::PORT_EXHAUSTION]["range_source"].is_string());
    assert!(matches!(
        report["status"].as_str(),
        Some("healthy" | "warning")
    ));
    assert!(out.status.success(), "exit status {:?}", out.status);
}

/// The socket table names the process that listens (PID from GetExtendedTcpTable, name from
/// sysinfo). Wine reports PID 0 for every socket: skipped there by scripts/test-windows.
#[test]
fn the_owner_of_a_listening_port_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holders = portwarden::network::listener_holders(port, "this test").unwrap();
    let me = format!("pid {} ", std::process::id());
    assert!(
        holders.len() == 1 && holders[0].starts_with(&me),
        "{holders:?}"
    );
}

/// The handle count is real (a running process always holds some). Wine answers 0: skipped
/// there by scripts/test-windows.
#[test]
fn the_handle_count_is_counted() {
    let check = portwarden::network::descriptors::file_descriptors(&Default::default());
    let handles = check.field("current_handles").and_then(|v| v.as_u64());
    assert!(handles.is_some_and(|h| h > 0), "{check:?}");
}
