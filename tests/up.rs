//! `portwarden up` with real processes from a real Procfile (Python's http.server, a shell
//! worker) and portwarden.toml (gunicorn taking its socket by LISTEN_FDS), against the real
//! daemon: each on its project port, the same on the next run; one crash stops every other
//! process and leaves no process and no allocation behind; Ctrl-C does the same, killing what
//! ignores SIGTERM after the grace period; --only and --env-file; bad input.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bin, cli, ChildDaemon};
use serde_json::Value;

/// A running `portwarden up` and everything it printed.
struct Up {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Up {
    fn start(dir: &Path, addr: &str, args: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .arg("up")
            .args(args)
            .current_dir(dir)
            .env("PORTWARDEN_ADDR", addr)
            // gunicorn keeps a control socket under $HOME.
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portwarden up");
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let keep = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    keep.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        Up { child, out }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits (up to 30 s) until the output holds `needle`.
    fn expect(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "never printed {needle:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Its exit status, within `limit`.
    fn exited(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the rest of the output
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "up did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The PID `up` reported for each process ("web: port 35100 (...), pid 4242: ...").
    fn pids(&self) -> Vec<(String, u16, i32)> {
        self.output()
            .lines()
            .filter_map(|l| {
                let rest = l.split_once(" | ")?.1;
                let (name, rest) = rest.split_once(": port ")?;
                let port = rest.split_whitespace().next()?.parse().ok()?;
                let pid = rest
                    .split(", pid ")
                    .nth(1)?
                    .split(':')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_string(), port, pid))
            })
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks.
    unsafe { libc::kill(pid, 0) == 0 || libc::kill(-pid, 0) == 0 }
}

/// A project directory (a git repository) holding `files`.
fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap().join("shop");
    std::fs::create_dir(&dir).unwrap();
    assert!(Command::new("git")
        .args(["init", "-q"])
        .current_dir(&dir)
        .status()
        .unwrap()
        .success());
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    (tmp, dir)
}

fn json(addr: &str, args: &[&str]) -> Value {
    let out = cli(addr, args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

const WORKER: &str = "sh -c 'echo \"worker sees web on $PORT_WEB, its own $PORT\"; \
    for i in $(seq 1 600); do if [ -e crash ]; then echo crashing; exit 7; fi; sleep 0.1; done'";

#[test]
fn one_crash_stops_every_process_and_leaves_nothing_behind() {
    let procfile =
        format!("web: python3 -m http.server $PORT --bind 127.0.0.1\nworker: {WORKER}\n");
    let (_tmp, dir) = project(&[("Procfile", &procfile), ("index.html", "hello from shop\n")]);
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35100-35109", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let mut ports_seen = Vec::new();
    for run in 0..2 {
        let _ = std::fs::remove_file(dir.join("crash"));
        let mut up = Up::start(&dir, &addr, &[]);
        up.expect("web ready on http://localhost:");
        let pids = up.pids();
        assert_eq!(pids.len(), 2, "{}", up.output());
        let web = pids.iter().find(|p| p.0 == "web").unwrap().1;
        let worker = pids.iter().find(|p| p.0 == "worker").unwrap().1;
        up.expect(&format!("worker sees web on {web}, its own {worker}"));
        assert!(http_get(web).contains("hello from shop"), "run {run}");
        let held = json(&addr, &["list", "--json"]);
        assert_eq!(held.as_array().unwrap().len(), 2, "{held}");
        assert_eq!(held[0]["pid"], up.child.id(), "owned by up");
        std::fs::write(dir.join("crash"), "").unwrap();
        let status = up.exited(Duration::from_secs(20));
        let out = up.output();
        assert_eq!(status.code(), Some(7), "{out}");
        for line in [
            "worker     | crashing",
            "portwarden | worker exited with code 7; stopping the others",
            "portwarden | sending SIGTERM to web",
            "portwarden | web was killed by signal 15",
        ] {
            assert!(out.contains(line), "{line:?} missing:\n{out}");
        }
        for (name, _, pid) in &pids {
            assert!(!alive(*pid), "{name} (pid {pid}) is still there:\n{out}");
        }
        assert_eq!(json(&addr, &["list", "--json"]), Value::Array(vec![]));
        let remembered = json(
            &addr,
            &["ports", "--project", dir.to_str().unwrap(), "--json"],
        );
        for p in remembered["ports"].as_array().unwrap() {
            assert_eq!(p["state"], "free", "{remembered}");
        }
        ports_seen.push((web, worker));
    }
    assert_eq!(
        ports_seen[0], ports_seen[1],
        "the same ports on the next run"
    );
}

#[test]
fn ctrl_c_stops_everything_and_what_ignores_sigterm_is_killed() {
    let procfile = "stubborn: sh -c 'trap \"echo not yet\" TERM; echo started; \
        for i in $(seq 1 600); do sleep 0.1; done'\nquick: sleep 60\n";
    let (_tmp, dir) = project(&[("Procfile", procfile)]);
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35110-35119", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let mut up = Up::start(&dir, &addr, &["--grace", "1s", "--ready-timeout", "1s"]);
    up.expect("stubborn   | started");
    let pids = up.pids();
    up.signal(libc::SIGINT);
    let status = up.exited(Duration::from_secs(15));
    let out = up.output();
    assert_eq!(status.code(), Some(0), "{out}");
    for line in [
        "portwarden | interrupted (SIGINT): stopping every process",
        "stubborn   | not yet",
        "still running after 1.0 s: sending SIGKILL to stubborn",
        "released ports",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    for (name, _, pid) in &pids {
        assert!(!alive(*pid), "{name} (pid {pid}) is still there:\n{out}");
    }
    assert_eq!(json(&addr, &["list", "--json"]), Value::Array(vec![]));
}

#[test]
fn only_some_processes_with_an_env_file() {
    let procfile = "web: sh -c 'echo \"greeting=$GREETING port=$PORT\"; exec sleep 60'\n\
        worker: sh -c 'echo worker ran; exec sleep 60'\n";
    let (_tmp, dir) = project(&[("Procfile", procfile), ("dev.env", "GREETING='hi there'\n")]);
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35120-35129", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let mut up = Up::start(&dir, &addr, &["--only", "web", "--env-file", "dev.env"]);
    up.expect("web        | greeting=hi there port=351");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!up.output().contains("worker ran"), "{}", up.output());
    assert_eq!(
        json(&addr, &["list", "--json"]).as_array().unwrap().len(),
        1
    );
    up.signal(libc::SIGTERM);
    assert_eq!(up.exited(Duration::from_secs(15)).code(), Some(0));
}

#[test]
fn gunicorn_serves_the_socket_it_is_handed() {
    let Some(gunicorn) = gunicorn() else { return };
    let app = "import os\n\
        def app(environ, start_response):\n\
        \x20   body = ('gunicorn %d says hello' % os.getpid()).encode()\n\
        \x20   start_response('200 OK', [('Content-Length', str(len(body)))])\n\
        \x20   return [body]\n";
    let toml = format!(
        "[processes]\nweb = {{ command = \"{} --workers 1 app:app\", listen_fds = true }}\n\
         static = \"python3 -m http.server $PORT --bind 127.0.0.1\"\n",
        gunicorn.display()
    );
    let (_tmp, dir) = project(&[("app.py", app), ("portwarden.toml", &toml)]);
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35130-35139", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let mut up = Up::start(&dir, &addr, &[]);
    up.expect("web ready on http://localhost:");
    up.expect("static ready on http://localhost:");
    let pids = up.pids();
    let (_, port, pid) = pids.iter().find(|p| p.0 == "web").unwrap().clone();
    assert!(up
        .output()
        .contains(&format!("web: port {port} (its socket passed as fd 3)")));
    // gunicorn took the socket (it would bind 127.0.0.1:8000 itself otherwise) ...
    up.expect(&format!("Listening at: http://[::]:{port} ({pid})"));
    let reply = http_get(port);
    assert!(
        reply.contains("gunicorn") && reply.contains("says hello"),
        "{reply}"
    );
    // ... and `wait` names it as the listener.
    let waited = cli(&addr, &["wait", &port.to_string()]);
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains(&format!("pid {pid} (gunicorn")),
        "{}",
        String::from_utf8_lossy(&waited.stdout)
    );
    up.signal(libc::SIGINT);
    assert_eq!(
        up.exited(Duration::from_secs(20)).code(),
        Some(0),
        "{}",
        up.output()
    );
    for (name, _, pid) in &pids {
        assert!(!alive(*pid), "{name} (pid {pid}) is still there");
    }
    assert_eq!(json(&addr, &["list", "--json"]), Value::Array(vec![]));
}

/// gunicorn from PATH or the repository's .venv (scripts/test installs it and then requires it).
fn gunicorn() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/gunicorn");
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("gunicorn"))
        .chain([venv])
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("PORTWARDEN_REQUIRE_GUNICORN").as_deref() != Ok("1"),
            "gunicorn is required (PORTWARDEN_REQUIRE_GUNICORN=1) but was not found"
        );
        eprintln!("gunicorn not found: skipped (pip install gunicorn, or run ./scripts/test)");
    }
    found
}

#[test]
fn what_cannot_run_is_refused_before_anything_starts() {
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35140-35145", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let (_t1, empty) = project(&[]);
    let (_t2, clash) = project(&[("Procfile", "web-1: sleep 1\nweb.1: sleep 1\n")]);
    let (_t3, broken) = project(&[("Procfile", "web python3\n")]);
    let (_t4, fine) = project(&[("Procfile", "web: sleep 1\n")]);
    for (dir, args, needle) in [
        (&empty, vec![], "no Procfile"),
        (
            &clash,
            vec![],
            "'web-1' and 'web.1' would both set PORT_WEB_1",
        ),
        (
            &broken,
            vec![],
            "Procfile: line 1: expected `name: command`",
        ),
        (&fine, vec!["--only", "api"], "has no process 'api'"),
        (
            &fine,
            vec!["--env-file", "missing.env"],
            "--env-file: missing.env",
        ),
        (&fine, vec!["--grace", "5"], "--grace: '5' needs a unit"),
    ] {
        let mut up = Up::start(dir, &addr, &args);
        let status = up.exited(Duration::from_secs(15));
        assert_eq!(status.code(), Some(64), "{args:?}:\n{}", up.output());
        assert!(up.output().contains(needle), "{args:?}:\n{}", up.output());
    }
    assert_eq!(json(&addr, &["list", "--json"]), Value::Array(vec![]));
}
