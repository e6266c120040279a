//! portpicker's portserver protocol, spoken by a raw client exactly as portpicker does (connect,
//! write the PID and a newline, read the answer): ports come from the managed range, are owned by
//! the claimed process and reclaimed when it exits; bad input gets `0` or a closed socket and
//! never stops the daemon from answering the next client. The real portpicker package is driven
//! against the same endpoint by the Python tests (clients/python/tests/test_portserver.py).

mod common;

#[path = "support/attacker.rs"]
mod attacker;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{nobody, TestDaemon};
use portwarden::api::{MAX_CONNECTIONS, REQUEST_TIMEOUT};
use portwarden::config::PortserverSocket;
use portwarden_client::proto::GetRequest;
use tonic::Code;

/// An abstract name no other test (or other checkout's test run) uses at the same time.
fn abstract_name(tag: &str) -> PortserverSocket {
    PortserverSocket::Abstract(format!("portwarden-test-{}-{tag}", std::process::id()))
}

async fn daemon(range: &str, addr: PortserverSocket) -> TestDaemon {
    TestDaemon::start_with(range, Duration::ZERO, |cfg| {
        cfg.portserver_socket = Some(addr)
    })
    .await
}

fn connect(addr: &PortserverSocket) -> UnixStream {
    let s = match addr {
        PortserverSocket::Path(p) => UnixStream::connect(p),
        PortserverSocket::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .expect("abstract address");
            UnixStream::connect_addr(&a)
        }
    }
    .expect("connect to the portserver socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Writes `request`, then reads the answer until the daemon closes. A reset counts as a close.
fn exchange(addr: &PortserverSocket, request: &[u8]) -> String {
    let mut s = connect(addr);
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// portpicker's request for `pid`: the port, or 0.
fn ask(addr: &PortserverSocket, pid: u32) -> u16 {
    let answer = exchange(addr, format!("{pid}\n").as_bytes());
    answer
        .strip_suffix('\n')
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("answer {answer:?} is not a port and a newline"))
}

fn me() -> u32 {
    std::process::id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_from_an_abstract_socket_is_owned_by_the_claimed_process_and_reclaimed_when_it_exits(
) {
    let addr = abstract_name("owner");
    let d = daemon("31000-31009", addr.clone()).await;
    let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
    let port = ask(&addr, child.id());
    assert!((31000..=31009).contains(&port), "port {port}");

    let mut c = d.unix().await;
    let a = c
        .get(GetRequest { port: port.into() })
        .await
        .expect("the port is allocated")
        .into_inner()
        .allocation
        .unwrap();
    assert_eq!(a.pid, Some(child.id() as i32));
    assert_eq!(a.service, "portpicker.sleep");
    assert_eq!(a.started_by, "sleep 30");

    child.kill().unwrap();
    child.wait().unwrap();
    let reclaimed = common::eventually(Duration::from_secs(5), || {
        let mut c = c.clone();
        async move {
            c.get(GetRequest { port: port.into() })
                .await
                .is_err_and(|s| s.code() == Code::NotFound)
        }
    })
    .await;
    assert!(
        reclaimed,
        "port {port} still allocated 5 s after its owner exited"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_socket_serves_the_same_protocol_and_is_removed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portserver.sock");
    let addr = PortserverSocket::Path(path.clone());
    let d = daemon("31010-31014", addr.clone()).await;
    let first = ask(&addr, me());
    let second = ask(&addr, me());
    assert!((31010..=31014).contains(&first) && (31010..=31014).contains(&second));
    assert_ne!(first, second, "one process asking twice holds two ports");
    d.stop().await;
    assert!(!path.exists(), "the socket file outlived the daemon");
}

/// The path socket is every local user's to ask, whatever the daemon's umask: a second account
/// gets a port for its own process there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_socket_answers_every_local_user() {
    use std::os::unix::fs::PermissionsExt;
    let Some(attacker) = attacker::Attacker::create("psm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("portserver.sock");
    // SAFETY: umask has no preconditions; the daemon binds with the umask it inherits.
    let old = unsafe { libc::umask(0o022) };
    let _d = daemon("31015-31019", PortserverSocket::Path(path.clone())).await;
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "mode {mode:o}");
    let out = attacker
        .python(&format!(
            "s = socket.socket(socket.AF_UNIX)\n\
             s.connect({path:?})\n\
             s.sendall(b'%d\\n' % os.getpid())\n\
             print(s.recv(16).decode().strip())\n",
            path = path.display().to_string()
        ))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer
            .trim()
            .parse::<u16>()
            .is_ok_and(|p| (31015..=31019).contains(&p)),
        "answer {answer:?}, stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_that_does_not_exist_init_a_thread_and_a_kernel_thread_get_zero() {
    let addr = abstract_name("refused");
    let d = daemon("31020-31024", addr.clone()).await;
    assert_eq!(ask(&addr, i32::MAX as u32), 0, "no such process");
    assert_eq!(ask(&addr, 1), 0, "init");
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = done_rx.recv();
    });
    let tid = rx.recv().unwrap();
    assert_eq!(ask(&addr, tid as u32), 0, "a thread is not a process");
    drop(done_tx);
    t.join().unwrap();
    if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
        assert_eq!(ask(&addr, 2), 0, "kthreadd is a kernel thread");
    }
    assert_ne!(ask(&addr, me()), 0, "the daemon still answers");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_zero_or_a_close_and_the_next_client_is_served() {
    let addr = abstract_name("bad");
    let d = daemon("31030-31049", addr.clone()).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("letters", b"abc\n".to_vec()),
        ("negative", b"-1\n".to_vec()),
        ("zero", b"0\n".to_vec()),
        ("two numbers", b"12 34\n".to_vec()),
        (
            "too many digits",
            b"123456789012345678901234567890\n".to_vec(),
        ),
        ("empty line", b"\n".to_vec()),
        ("nothing, then end of stream", Vec::new()),
        ("binary", vec![0xff, 0x00, 0xfe, b'\n']),
        ("a megabyte without a newline", vec![b'7'; 1 << 20]),
    ];
    for (what, request) in cases {
        let answer = exchange(&addr, &request);
        assert!(
            answer.is_empty() || answer == "0\n",
            "{what}: answered {answer:?}"
        );
        assert_ne!(ask(&addr, me()), 0, "after {what} the daemon still answers");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_sent_in_pieces_is_put_together() {
    let addr = abstract_name("pieces");
    let d = daemon("31055-31059", addr.clone()).await;
    let line = format!("{}\n", me());
    let (head, tail) = line.split_at(2);
    let mut s = connect(&addr);
    s.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(tail.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let port: u16 = out
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("answered {out:?}"));
    assert!((31055..=31059).contains(&port));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_writes_is_cut_off_and_blocks_nobody() {
    let addr = abstract_name("silent");
    let d = daemon("31050-31054", addr.clone()).await;
    let mut silent = connect(&addr);
    let started = Instant::now();
    let t = Instant::now();
    assert_ne!(ask(&addr, me()), 0);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "a good client waited {:?} behind a silent one",
        t.elapsed()
    );
    let mut out = Vec::new();
    let _ = silent.read_to_end(&mut out);
    let waited = started.elapsed();
    assert!(out.is_empty() || out == b"0\n", "answered {out:?}");
    assert!(
        waited >= REQUEST_TIMEOUT - Duration::from_millis(100)
            && waited < REQUEST_TIMEOUT + Duration::from_secs(2),
        "closed after {waited:?}, expected about {REQUEST_TIMEOUT:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_client_gets_zero_at_once_and_service_resumes() {
    let addr = abstract_name("limit");
    let d = daemon("31060-31064", addr.clone()).await;
    let held: Vec<UnixStream> = (0..MAX_CONNECTIONS).map(|_| connect(&addr)).collect();
    // Let the daemon accept them all.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(exchange(&addr, format!("{}\n", me()).as_bytes()), "0\n");
    assert!(
        t.elapsed() < REQUEST_TIMEOUT,
        "the refusal waited {:?}",
        t.elapsed()
    );
    drop(held);
    let served = common::eventually(Duration::from_secs(5), || {
        let addr = addr.clone();
        async move { ask(&addr, me()) != 0 }
    })
    .await;
    assert!(served, "no port within 5 s after the connections closed");
    d.stop().await;
}

/// A caller may claim its own process or one of its uid; root any. Needs root (to run a client
/// as uid 65534); skipped otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_may_claim_only_processes_of_its_own_uid_unless_root() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: skipping the cross-uid claim test");
        return;
    }
    let addr = abstract_name("uid");
    let d = daemon("31070-31079", addr.clone()).await;
    let PortserverSocket::Abstract(name) = &addr else {
        unreachable!()
    };
    // SAFETY: drop_to_nobody makes only async-signal-safe calls.
    let mut nobody_sleep = unsafe {
        Command::new("sleep")
            .arg("30")
            .pre_exec(nobody::drop_to_nobody)
            .spawn()
            .expect("sleep as nobody")
    };
    // A client running as nobody asks for each pid given on its command line.
    let as_nobody = |pid: u32| -> String {
        let script = "import socket,sys\n\
             s=socket.socket(socket.AF_UNIX)\n\
             s.connect('\\0'+sys.argv[1])\n\
             s.sendall(sys.argv[2].encode()+b'\\n')\n\
             print(s.recv(64).decode().strip())";
        // SAFETY: drop_to_nobody makes only async-signal-safe calls.
        let out = unsafe {
            Command::new("python3")
                .args(["-c", script, name, &pid.to_string()])
                .stderr(Stdio::inherit())
                .pre_exec(nobody::drop_to_nobody)
                .output()
                .expect("python3 as nobody")
        };
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(as_nobody(me()), "0", "nobody claimed a root process");
    let port: u16 = as_nobody(nobody_sleep.id()).parse().unwrap();
    assert_ne!(port, 0, "nobody may claim another process of its own uid");
    assert_ne!(
        ask(&addr, nobody_sleep.id()),
        0,
        "root may claim any process"
    );
    nobody_sleep.kill().unwrap();
    nobody_sleep.wait().unwrap();
    d.stop().await;
}

#[path = "support/http.rs"]
mod http1;

/// The value of one sample of the daemon's /metrics (0 when absent).
fn metric(d: &TestDaemon, name: &str) -> u64 {
    let text = http1::get(&http1::Addr::Unix(d.socket.clone()), "/metrics").text();
    http1::sample(&text, name).unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portserver_requests_are_counted_as_every_transport_s_are() {
    let addr = abstract_name("metrics");
    let d = daemon("31050-31059", addr.clone()).await;
    assert_ne!(ask(&addr, me()), 0);
    assert_ne!(ask(&addr, me()), 0);
    assert_eq!(exchange(&addr, b"abc\n"), "0\n");
    let requests = r#"portwarden_requests_total{transport="portserver",method="allocate"}"#;
    let errors = r#"portwarden_request_errors_total{transport="portserver",method="allocate"}"#;
    assert_eq!(metric(&d, requests), 3);
    assert_eq!(metric(&d, errors), 1);
    assert!(metric(&d, r#"portwarden_refusals_total{code="INVALID_ARGUMENT"}"#) >= 1);
    d.stop().await;
}
