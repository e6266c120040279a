//! Honest about the host, and not blocked by what does not matter. In a network namespace this
//! test creates, with a ten-port ephemeral range and real outgoing connections using it up:
//! ephemeral ports above 80 % used (outside the managed range) do not refuse an allocation by
//! default but come back with it and are logged once; a daemon told to block on them refuses,
//! with the numbers and the fix; host-wide findings are logged when they appear and when they
//! clear, not on every allocation. Refusals are logged with the caller.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bin, can_unshare, ChildDaemon};
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{AllocateRequest, GetRequest};
use portwarden_client::{connect, Target};

/// A daemon alone in a new network namespace whose ephemeral range is 40000-40009.
struct NsDaemon {
    child: Child,
    log: Arc<Mutex<String>>,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl NsDaemon {
    fn start(range: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("pw.sock");
        let mut child = Command::new("unshare")
            .args(["-n", "sh", "-c"])
            .arg(
                "ip link set lo up && sysctl -qw net.ipv4.ip_local_port_range='40000 40009' \
                 && exec \"$@\"",
            )
            .arg("sh")
            .arg(bin())
            .args(["serve", "--listen", "127.0.0.1:27391", "--range", range])
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .arg("--unix-socket")
            .arg(&socket)
            .args(["--watchdog-interval", "200ms"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let keep = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = keep.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let d = Self {
            child,
            log,
            socket,
            _dir: dir,
        };
        d.wait_for("portwarden is ready");
        d
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    async fn client(&self) -> PortsServiceClient<tonic::transport::Channel> {
        PortsServiceClient::new(connect(&Target::Unix(self.socket.clone())).await.unwrap())
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Outgoing connections inside the daemon's namespace, each holding an ephemeral port; closed
/// with a reset, so no TIME_WAIT keeps the port.
struct Connections {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Connections {
    fn in_namespace_of(pid: u32) -> Self {
        let script = r#"
import socket, struct, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 27399))
srv.listen(64)
held = []
for line in sys.stdin:
    n = int(line)
    while len(held) > n:
        c, a = held.pop()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        a.close()
    while len(held) < n:
        c = socket.create_connection(("127.0.0.1", 27399))
        a, _ = srv.accept()
        held.append((c, a))
    print("ok", flush=True)
"#;
        let mut child = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "python3", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn hold(&mut self, n: usize) {
        writeln!(self.stdin, "{n}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn req(service: &str) -> AllocateRequest {
    AllocateRequest {
        service: service.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_exhaustion_is_reported_and_logged_once_but_does_not_refuse() {
    if !can_unshare() {
        return;
    }
    let d = NsDaemon::start("27380-27389", &["--log-format", "json"]);
    let mut conns = Connections::in_namespace_of(d.child.id());
    let mut c = d.client().await;

    // 70 % of the ephemeral ports: a warning, logged once however many allocations follow.
    conns.hold(7);
    d.wait_for("Warning: port_exhaustion");
    for i in 0..3 {
        let r = c
            .allocate(req(&format!("w{i}")))
            .await
            .unwrap()
            .into_inner();
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with("port_exhaustion: Ephemeral port usage 70.0% (7 of 10)")),
            "{:?}",
            r.warnings
        );
    }
    assert_eq!(d.count("Warning: port_exhaustion"), 1, "{}", d.log());
    assert_eq!(
        d.count("Network warnings for port"),
        0,
        "a host-wide warning is not repeated per allocation: {}",
        d.log()
    );

    // 90 %: critical, logged once, and allocation goes on (the ports it hands out are not the
    // ephemeral ones).
    conns.hold(9);
    d.wait_for("Critical: port_exhaustion");
    let r = c.allocate(req("c0")).await.unwrap().into_inner();
    assert_eq!(
        r.network_health(),
        portwarden_client::proto::OverallStatus::Critical
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("Ephemeral port usage 90.0% (9 of 10)")),
        "{:?}",
        r.warnings
    );
    c.allocate(req("c1")).await.unwrap();
    assert_eq!(d.count("Critical: port_exhaustion"), 1, "{}", d.log());

    // Cleared once the connections go.
    conns.hold(0);
    d.wait_for("Cleared: port_exhaustion");
    c.allocate(req("after")).await.unwrap();
    assert_eq!(d.count("Cleared: port_exhaustion"), 1, "{}", d.log());

    // JSON logs: lists are arrays, the text lines' emoji are left out.
    let lines: Vec<serde_json::Value> = d
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let despite = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("despite critical findings"))
        })
        .expect("the allocation made despite a critical finding is logged");
    assert_eq!(despite["critical"], serde_json::json!(["port_exhaustion"]));
    let allocated = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("[PORT-MANAGER] Allocated port"))
        })
        .expect("the allocation line");
    assert!(!allocated.to_string().contains('✅'), "{allocated}");
    assert!(d
        .log()
        .lines()
        .all(|l| !l.contains('✅') && !l.contains('⚠')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_check_refuses_with_its_numbers_and_its_fix() {
    if !can_unshare() {
        return;
    }
    let d = NsDaemon::start(
        "27380-27389",
        &["--blocking-checks", "ipv4_available,port_exhaustion"],
    );
    let mut conns = Connections::in_namespace_of(d.child.id());
    conns.hold(9);
    d.wait_for("Critical: port_exhaustion");
    let mut c = d.client().await;
    let e = c.allocate(req("web")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    let m = e.message();
    assert!(
        m.contains("port_exhaustion: Ephemeral port usage 90.0% (9 of 10); fix: "),
        "{m}"
    );
    assert!(m.contains("ip_local_port_range"), "the fix: {m}");
    assert!(
        m.contains("blocking_checks = [ipv4_available, port_exhaustion]"),
        "{m}"
    );
    // Refusals are logged with the caller: over the Unix socket, its uid and pid.
    d.wait_for(
        "refused /portwarden.v1.PortsService/Allocate: FAILED_PRECONDITION: allocation refused by the host's network: port_exhaustion",
    );
    d.wait_for(&format!("(caller uid 0 pid {})", std::process::id()));
    conns.hold(0);
    d.wait_for("Cleared: port_exhaustion");
    c.allocate(req("web"))
        .await
        .expect("allowed once it clears");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_allocations_are_logged_with_owner_ttl_and_caller() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27370-27372", &[]);
    let mut unix = d.unix().await;
    unix.allocate(AllocateRequest {
        ttl_seconds: Some(300),
        ..req("web")
    })
    .await
    .unwrap();
    let me = std::process::id();
    d.wait_for_log(&format!(
        "owner=lease 300 s ttl_seconds=300 caller=uid 0 pid {me}"
    ))
    .unwrap();
    // Refused over the Unix socket: the uid and pid; over TCP: the peer's address.
    let e = unix.get(GetRequest { port: 27372 }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    d.wait_for_log(&format!(
        "refused /portwarden.v1.PortsService/Get: NOT_FOUND: port 27372 is not allocated (caller uid 0 pid {me})"
    ))
    .unwrap();
    let mut tcp = d.tcp().await;
    let e = tcp.allocate(req("bad name")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    d.wait_for_log(
        "refused /portwarden.v1.PortsService/Allocate: INVALID_ARGUMENT: invalid request: service:",
    )
    .unwrap();
    d.wait_for_log("(caller 127.0.0.1:").unwrap();
}
