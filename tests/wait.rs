//! `portwarden wait` against real listeners: a Python HTTP server on ::1 only (what `localhost`
//! means on some machines), one answering 503 then 200, nothing at all; a project's port by
//! name through a real daemon; bad input.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, ChildDaemon, Killed};

/// A port in 35500-35599 that nothing holds on either loopback now.
fn free_port(from: u16) -> u16 {
    (from..35600)
        .find(|p| {
            std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && std::net::TcpListener::bind(("::1", *p)).is_ok()
        })
        .expect("a free port in 35500-35599")
}

fn wait(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("wait")
        .args(args)
        .env("PORTWARDEN_ADDR", "http://127.0.0.1:1")
        .output()
        .expect("run portwarden wait")
}

/// A Python HTTP server on `bind`; GET answers `status` (503 until `ok_after` requests, then
/// 200). Started in the background: `wait` is what finds out when it is up.
fn python_server(bind: &str, port: u16, ok_after: u32) -> Killed {
    let script = format!(
        r#"
import http.server, socket, time
time.sleep(0.5)
seen = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global seen
        seen += 1
        self.send_response(200 if seen > {ok_after} else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in "{bind}" else socket.AF_INET
S(("{bind}", {port}), H).serve_forever()
"#
    );
    Killed(
        Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3"),
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_listener_on_ipv6_loopback_only_is_found_and_named() {
    let port = free_port(35500);
    let _server = python_server("::1", port, 0);
    let started = Instant::now();
    let out = wait(&[&port.to_string(), "--timeout", "20s"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!(
            "port {port} ready: [::1]:{port} accepts connections"
        )),
        "{said}"
    );
    assert!(said.contains("python3"), "the listener is named: {said}");
    assert!(
        started.elapsed() > Duration::from_millis(400),
        "it waited for the server"
    );
    let out = wait(&[&port.to_string(), "--http", "/", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["address"], format!("[::1]:{port}"));
    assert_eq!(v["http_status"], 200);
    assert_eq!(v["ready"], true);
}

#[test]
fn an_http_answer_must_be_2xx_or_3xx() {
    let port = free_port(35520);
    let _server = python_server("127.0.0.1", port, 3);
    // 503 three times, then 200: ready, after a few rounds.
    let out = wait(&[&port.to_string(), "--http", "/health", "--timeout", "20s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("GET /health answered 200"),
        "{}",
        text(&out)
    );
    let port = free_port(35540);
    let _never = python_server("127.0.0.1", port, u32::MAX);
    let out = wait(&[&port.to_string(), "--http", "/", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("answered 503 (not 2xx or 3xx)"),
        "{}",
        text(&out)
    );
}

#[test]
fn nothing_listening_is_exit_3_within_the_timeout() {
    let port = free_port(35560);
    let started = Instant::now();
    let out = wait(&[&port.to_string(), "--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        text(&out).contains(&format!(
            "nothing accepted connections on port {port} (127.0.0.1 or ::1) within"
        )),
        "{}",
        text(&out)
    );
    let out = wait(&[&port.to_string(), "--timeout", "200ms", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], 4, "DEADLINE_EXCEEDED");
}

#[test]
fn bad_input_is_a_usage_error_naming_the_option() {
    for (args, needle) in [
        (vec!["0"], "PORT: 0 is not a port number"),
        (
            vec!["8000", "--timeout", "5"],
            "--timeout: '5' needs a unit",
        ),
        (
            vec!["8000", "--http", "health"],
            "--http: 'health' must be a path",
        ),
        (vec!["8000", "--http", "/a b"], "percent-encode"),
        (vec!["bad name!"], "is neither a port number nor a name"),
    ] {
        let out = wait(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_project_port_is_waited_for_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let project = std::fs::canonicalize(tmp.path()).unwrap();
    let dir = project.to_str().unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35580-35585", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let out = common::cli(&addr, &["allocate", "web", "--project", dir, "--quiet"]);
    let port: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let _server = Killed(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = common::cli(&addr, &["wait", "web", "--project", dir, "--http", "/"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("port {port} ready: 127.0.0.1:{port}")));
    let out = common::cli(&addr, &["wait", "api", "--project", dir]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("has no port named 'api'"),
        "{}",
        text(&out)
    );
}
