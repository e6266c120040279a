//! The daemon binary as a child started through `sh -c '... exec'`, so that the environment can
//! name the child's own PID (`LISTEN_PID=$$`, `WATCHDOG_PID=$$`) the way systemd does; its log
//! collected for assertions.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Spawned {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

/// `sh -c 'VAR=$$ ... exec portwarden "$@"'`: `pid_vars` get the PID the daemon will run as.
pub fn through_shell(binary: &str, pid_vars: &[&str]) -> Command {
    let assigns: String = pid_vars.iter().map(|v| format!("{v}=$$ ")).collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{assigns}exec \"$0\" \"$@\""))
        .arg(binary);
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTWARDEN_") || k.starts_with("LISTEN_") || k == "NOTIFY_SOCKET" {
            cmd.env_remove(k);
        }
    }
    cmd
}

impl Spawned {
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the daemon");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = keep.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Self { child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) for a log line containing `needle`; returns that line.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no '{needle}' in the daemon's log within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of the "listening on tcp ADDR" line.
    pub fn tcp_addr(&self) -> std::net::SocketAddr {
        let line = self.wait_for("listening on tcp ", Duration::from_secs(20));
        let rest = line.split("listening on tcp ").nth(1).unwrap();
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// SIGTERM, then the exit status (within 15 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
