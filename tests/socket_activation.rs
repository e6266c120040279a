//! Socket activation as systemd does it: this test binds both listeners, hands them to the real
//! binary as fds 3 and 4 with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, and calls over each. The
//! config names the same addresses, so a daemon that bound them itself would fail to start.

#[path = "support/child.rs"]
mod child;

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use child::{through_shell, Spawned};
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::ListRequest;
use portwarden_client::{connect, Target};

/// `portwarden serve` with `fds` at 3, 4, ... and the LISTEN_* variables systemd sets.
fn activated(fds: &[RawFd], names: &str, dir: &Path, tcp: &str, unix: &Path) -> Command {
    let mut cmd = through_shell(env!("CARGO_BIN_EXE_portwarden"), &["LISTEN_PID"]);
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cmd.args(["serve", "--listen", tcp, "--range", "26300-26310"])
        .args([
            "--netns-lock",
            &format!("@portwarden-test-{}-sa-{n}", std::process::id()),
        ])
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--unix-socket")
        .arg(unix)
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names);
    let fds = fds.to_vec();
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Move every fd out of the way first, so placing one cannot clobber another.
            let mut high = Vec::with_capacity(fds.len());
            for &fd in &fds {
                let h = libc::fcntl(fd, libc::F_DUPFD, 100);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(h);
            }
            for (i, &h) in high.iter().enumerate() {
                // dup2 leaves the new fd without FD_CLOEXEC: it survives both execs.
                if libc::dup2(h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(h);
            }
            Ok(())
        });
    }
    cmd
}

/// Runs `f` on a runtime of its own, dropped afterwards: its connections close with it, so the
/// daemon's shutdown does not wait for idle clients.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn list(target: Target) -> usize {
    let channel = connect(&target).await.expect("connect");
    PortsServiceClient::new(channel)
        .list(ListRequest::default())
        .await
        .expect("list")
        .into_inner()
        .allocations
        .len()
}

#[test]
fn both_listeners_come_from_systemd_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let sock = dir.path().join("pw.sock");
    let unix = UnixListener::bind(&sock).unwrap();
    let fds = [tcp.as_raw_fd(), unix.as_raw_fd()];
    // One .socket unit names every fd after itself: the daemon tells them apart by type.
    let names = "portwarden.socket:portwarden.socket";

    let mut first = Spawned::start(activated(
        &fds,
        names,
        dir.path(),
        &tcp_addr.to_string(),
        &sock,
    ));
    assert_eq!(first.tcp_addr(), tcp_addr);
    first.wait_for("(passed by systemd)", Duration::from_secs(10));
    block_on(async {
        assert_eq!(list(Target::Tcp(format!("http://{tcp_addr}"))).await, 0);
        assert_eq!(list(Target::Unix(sock.clone())).await, 0);
    });
    assert!(first.terminate().success(), "{}", first.log());
    assert!(
        sock.exists(),
        "the socket file belongs to systemd and stays after the daemon stops"
    );

    // Between two daemons the sockets stay open (systemd holds them): a client that connects
    // now waits in the kernel's queue and is served by the next daemon.
    let waiting =
        std::thread::spawn(move || block_on(list(Target::Tcp(format!("http://{tcp_addr}")))));
    std::thread::sleep(Duration::from_millis(300));
    let mut second = Spawned::start(activated(
        &fds,
        names,
        dir.path(),
        &tcp_addr.to_string(),
        &sock,
    ));
    assert_eq!(waiting.join().expect("served by the restarted daemon"), 0);
    block_on(async {
        assert_eq!(list(Target::Unix(sock.clone())).await, 0);
    });
    assert!(second.terminate().success(), "{}", second.log());
}

#[test]
fn fd_names_pick_the_listeners_whatever_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pw.sock");
    let unix = UnixListener::bind(&sock).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    // Unix first, then TCP, named for what they are.
    let mut d = Spawned::start(activated(
        &[unix.as_raw_fd(), tcp.as_raw_fd()],
        "unix:tcp",
        dir.path(),
        &tcp_addr.to_string(),
        &sock,
    ));
    assert_eq!(d.tcp_addr(), tcp_addr);
    block_on(async {
        assert_eq!(list(Target::Tcp(format!("http://{tcp_addr}"))).await, 0);
        assert_eq!(list(Target::Unix(sock.clone())).await, 0);
    });
    assert!(d.terminate().success());
}

#[test]
fn a_socket_under_the_wrong_name_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pw.sock");
    let unix = UnixListener::bind(&sock).unwrap();
    let mut d = Spawned::start(activated(
        &[unix.as_raw_fd()],
        "tcp",
        dir.path(),
        "127.0.0.1:0",
        &dir.path().join("other.sock"),
    ));
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{}", d.log());
    assert!(
        d.log()
            .contains("fd 3 (named 'tcp') is not a TCP stream socket"),
        "{}",
        d.log()
    );
}

#[test]
fn a_plaintext_socket_systemd_passes_on_all_interfaces_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let mut d = Spawned::start(activated(
        &[tcp.as_raw_fd()],
        "tcp",
        dir.path(),
        "127.0.0.1:0",
        &dir.path().join("pw.sock"),
    ));
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{}", d.log());
    assert!(
        d.log().contains("is reachable from other hosts"),
        "{}",
        d.log()
    );
}
