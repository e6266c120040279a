//! `portwarden run` with consumers nobody here wrote the protocol side of: a Rust program using
//! the `listenfd` crate (examples/listenfd_hello.rs) and a Python program using
//! `socket.socket(fileno=3)`. Each serves HTTP on the socket it was passed; exit codes and
//! signals come back through the supervisor; the port is released when the command ends (or
//! reclaimed when the supervisor is killed); an outsider binding in a loop never gets the port.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestDaemon;
use portwarden_client::proto::{Allocation, GetRequest};
use tonic::Code;

/// A Python program that takes its socket from fd 3 the way systemd programs do, after checking
/// the activation variables; `GET /exit/N` makes it exit with N.
const PY_CONSUMER: &str = r#"
import os, socket, sys
assert os.environ["LISTEN_PID"] == str(os.getpid()), (os.environ["LISTEN_PID"], os.getpid())
assert os.environ["LISTEN_FDS"] == "1"
s = socket.socket(fileno=3)
port = s.getsockname()[1]
assert os.environ["PORT"] == str(port), (os.environ["PORT"], port)
name = os.environ["LISTEN_FDNAMES"]
while True:
    c, _ = s.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d:
            break
        req += d
    parts = req.split(b" ")
    path = parts[1].decode() if len(parts) > 1 else "/"
    body = f"hello from python on port {port} ({name}, pid {os.getpid()})\n".encode()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    c.close()
    if path.startswith("/exit/"):
        sys.exit(int(path[6:]))
"#;

/// examples/listenfd_hello, built by `cargo test` (or `cargo build --examples`).
fn listenfd_hello() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples/listenfd_hello");
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds it, or `cargo build --examples`",
        path.display()
    );
    path
}

/// A running `portwarden run`, with everything it (and its command) wrote to stderr.
struct Run {
    child: Child,
    port: u16,
    /// When the supervisor said it was listening.
    ready_at: Instant,
    log: Arc<Mutex<String>>,
}

impl Run {
    fn start(d: &TestDaemon, run_args: &[&str], command: &[&str]) -> Self {
        let mut child = Command::new(common::bin())
            .arg("run")
            .args(run_args)
            .arg("--")
            .args(command)
            .env("PORTWARDEN_ADDR", format!("unix:{}", d.socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portwarden run");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split(" on port ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = tx.send((port, Instant::now()));
                }
                keep.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let Ok((port, ready_at)) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let status = child.wait();
            std::thread::sleep(Duration::from_millis(100)); // the rest of the log
            panic!(
                "portwarden run never reported its port ({status:?}):\n{}",
                log.lock().unwrap()
            )
        };
        Run {
            child,
            port,
            ready_at,
            log,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "portwarden run still running:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` on 127.0.0.1:`port`: the response body (panics on anything but 200).
fn get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to port {port}: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{out}");
    body.to_string()
}

async fn allocation(d: &TestDaemon, port: u16) -> Result<Allocation, tonic::Status> {
    d.unix()
        .await
        .get(GetRequest { port: port.into() })
        .await
        .map(|r| r.into_inner().allocation.unwrap())
}

async fn assert_released(d: &TestDaemon, port: u16) {
    let err = allocation(d, port).await.expect_err("released");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listenfd_program_serves_on_the_passed_socket_and_its_exit_code_comes_back() {
    let d = TestDaemon::start("21100-21104", Duration::ZERO).await;
    let hello = listenfd_hello();
    let mut run = Run::start(&d, &["--purpose", "demo"], &[hello.to_str().unwrap()]);
    assert!((21100..=21104).contains(&run.port));
    let body = get(run.port, "/");
    assert!(
        body.starts_with(&format!("hello from listenfd_hello on port {}", run.port)),
        "{body}"
    );
    let a = allocation(&d, run.port)
        .await
        .expect("allocated while running");
    assert_eq!(a.service, "listenfd_hello", "the command's name by default");
    assert_eq!(a.purpose, "demo");
    assert_eq!(a.pid, Some(run.pid()), "owned by the supervisor");
    get(run.port, "/exit/3");
    assert_eq!(run.wait().code(), Some(3));
    assert_released(&d, run.port).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_program_serves_on_fd_3_with_the_activation_variables() {
    let d = TestDaemon::start("21110-21114", Duration::ZERO).await;
    let mut run = Run::start(&d, &["--service", "pyweb"], &["python3", "-c", PY_CONSUMER]);
    let body = get(run.port, "/");
    assert!(
        body.starts_with(&format!("hello from python on port {} (pyweb,", run.port)),
        "{body}"
    );
    get(run.port, "/exit/0");
    assert!(
        run.wait().success(),
        "consumer failed:\n{}",
        run.log.lock().unwrap()
    );
    assert_released(&d, run.port).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_reach_the_command_and_a_death_by_signal_n_exits_128_plus_n() {
    let d = TestDaemon::start("21120-21124", Duration::ZERO).await;
    for (sig, command) in [
        (libc::SIGTERM, vec!["python3", "-c", PY_CONSUMER]),
        (libc::SIGINT, vec!["sleep", "30"]),
        (libc::SIGHUP, vec!["sleep", "30"]),
    ] {
        let mut run = Run::start(&d, &[], &command);
        if command[0] == "python3" {
            get(run.port, "/"); // serving: the signal arrives while it runs
        }
        run.signal(sig);
        assert_eq!(
            run.wait().code(),
            Some(128 + sig),
            "signal {sig}:\n{}",
            run.log.lock().unwrap()
        );
        assert_released(&d, run.port).await;
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_stops_its_command_and_the_daemon_reclaims_the_port() {
    let d = TestDaemon::start("21130-21134", Duration::ZERO).await;
    let hello = listenfd_hello();
    let mut run = Run::start(&d, &[], &[hello.to_str().unwrap()]);
    let body = get(run.port, "/");
    let child_pid: i32 = body
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.trim_end().trim_end_matches(')').parse().ok())
        .expect("the command's pid in its answer");
    run.signal(libc::SIGKILL);
    run.wait();
    let port = run.port;
    let gone = common::eventually(Duration::from_secs(5), || async move {
        // SAFETY: signal 0 only checks existence.
        unsafe { libc::kill(child_pid, 0) != 0 }
    })
    .await;
    assert!(gone, "the command outlived its supervisor");
    let reclaimed = common::eventually(Duration::from_secs(5), || async {
        allocation(&d, port)
            .await
            .is_err_and(|s| s.code() == Code::NotFound)
    })
    .await;
    assert!(
        reclaimed,
        "port {port} still allocated after its supervisor died"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_start_allocates_nothing() {
    // A quarantine, so that a port taken and given back would be seen resting.
    let d = TestDaemon::start("31610-31614", Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    let not_executable = not_executable.to_str().unwrap().to_string();
    let dir_path = dir.path().to_str().unwrap().to_string();
    for (command, code, said) in [
        (
            "/nonexistent/cmd",
            127,
            "cannot start /nonexistent/cmd: no such file".to_string(),
        ),
        (
            "portwarden-no-such-command",
            127,
            "cannot start portwarden-no-such-command: not found in PATH (".to_string(),
        ),
        (
            not_executable.as_str(),
            126,
            format!("cannot start {not_executable}: not executable"),
        ),
        (
            dir_path.as_str(),
            126,
            format!("cannot start {dir_path}: a directory"),
        ),
    ] {
        let out = Command::new(common::bin())
            .args(["run", "--", command])
            .env("PORTWARDEN_ADDR", format!("unix:{}", d.socket.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{command}: {err}");
        assert!(err.contains(&said), "{command}: {err}");
    }
    let mut ports = d.unix().await;
    assert!(common::list(&mut ports).await.is_empty());
    let status = ports
        .status(portwarden_client::proto::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.quarantined, 0, "no port was taken and given back");
    let mut history = portwarden_client::proto::watchdog_service_client::WatchdogServiceClient::new(
        d.tcp_channel().await,
    );
    for service in ["cmd", "portwarden-no-such-command", "script.sh"] {
        let events = history
            .history(portwarden_client::proto::HistoryRequest {
                service: service.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        assert!(events.is_empty(), "{service}: {events:?}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_lease_is_renewed_while_the_command_runs() {
    let d = TestDaemon::start("21160-21164", Duration::ZERO).await;
    let mut run = Run::start(&d, &["--ttl", "1s"], &["sleep", "2.5"]);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let a = allocation(&d, run.port)
        .await
        .expect("a 1 s lease alive after 1.8 s");
    assert!(a.renewed_at.is_some(), "never renewed");
    assert!(run.wait().success());
    assert_released(&d, run.port).await;
    d.stop().await;
}

/// An outside process trying to bind every port of the range in a loop, as a competing server
/// would (SO_REUSEADDR, bind, listen), holding each port it gets for a moment.
struct Outsider {
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Every successful bind: (port, when).
    wins: Arc<Mutex<Vec<(u16, Instant)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Outsider {
    fn start(ports: std::ops::RangeInclusive<u16>) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wins = Arc::new(Mutex::new(Vec::new()));
        let (s, w) = (stop.clone(), wins.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                for port in ports.clone() {
                    let sock =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                            .unwrap();
                    sock.set_reuse_address(true).unwrap();
                    let addr: std::net::SocketAddr = ([0, 0, 0, 0], port).into();
                    if sock.bind(&addr.into()).is_ok() && sock.listen(8).is_ok() {
                        w.lock().unwrap().push((port, Instant::now()));
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        });
        Self {
            stop,
            wins,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<(u16, Instant)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.wins.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_binding_in_a_loop_never_gets_the_port_the_command_was_given() {
    let d = TestDaemon::start("21140-21149", Duration::ZERO).await;
    let outsider = Outsider::start(21140..=21149);
    let (mut served, mut retries) = (Vec::new(), 0);
    for _ in 0..5 {
        let mut run = Run::start(&d, &[], &["python3", "-c", PY_CONSUMER]);
        let body = get(run.port, "/");
        assert!(body.starts_with("hello from python"), "{body}");
        // Held from the supervisor's bind (before it said so) until the command exits.
        served.push((run.port, run.ready_at, Instant::now()));
        get(run.port, "/exit/0");
        assert!(run.wait().success(), "{}", run.log.lock().unwrap());
        retries += run
            .log
            .lock()
            .unwrap()
            .matches("was taken by another process")
            .count();
    }
    let wins = outsider.stop();
    eprintln!(
        "outsider bound a port {} times; the supervisor lost the race to it {retries} times",
        wins.len()
    );
    for (port, from, to) in &served {
        let stolen: Vec<_> = wins
            .iter()
            .filter(|(p, at)| p == port && at >= from && at <= to)
            .collect();
        assert!(
            stolen.is_empty(),
            "the outsider bound port {port} while the command held it"
        );
    }
    assert!(
        !wins.is_empty(),
        "the outsider never bound anything: the test proves nothing"
    );
    d.stop().await;
}
