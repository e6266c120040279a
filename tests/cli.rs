//! The CLI as a shell script uses it, against the real daemon binary.

mod common;

use std::process::{Command, Output};

use common::{bin, ChildDaemon};

fn cli(addr: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("PORTWARDEN_ADDR", addr)
        .output()
        .expect("run portwarden")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn allocate_quiet_list_json_release_over_the_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27000-27010", &["--quarantine", "0s"]);
    let unix = format!("unix:{}", d.socket.display());
    let tcp = format!("http://{}", d.addr);

    let port = stdout(&cli(
        &unix,
        &["allocate", "web", "--quiet", "--purpose", "front end"],
    ));
    assert_eq!(port, "27000\n", "--quiet prints only the port");
    let port2 = stdout(&cli(
        &tcp,
        &[
            "allocate",
            "api",
            "-q",
            "--ttl",
            "5m",
            "--label",
            "team=core",
        ],
    ));
    assert_eq!(port2.trim(), "27001");

    let list: serde_json::Value =
        serde_json::from_str(&stdout(&cli(&tcp, &["list", "--json"]))).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["service"], "web");
    assert_eq!(list[0]["purpose"], "front end");
    assert_eq!(list[1]["ttl_seconds"], 300);
    assert_eq!(list[1]["labels"]["team"], "core");
    assert_eq!(list[1]["owner"], "lease");

    let table = stdout(&cli(&tcp, &["list"]));
    assert!(
        table.starts_with("PORT") && table.contains("27000  web"),
        "{table}"
    );

    // The same uid (or root) needs no token, over the Unix socket as over loopback TCP (where
    // the socket table names the caller; see tests/caller_identity.rs for another uid).
    let released = stdout(&cli(&unix, &["release", "27000"]));
    assert!(released.contains("Released port 27000"), "{released}");

    let status = stdout(&cli(&tcp, &["status"]));
    assert!(status.contains("Allocated: 1 / 11 ports"), "{status}");
    assert!(status.contains("Port 27001: api"), "{status}");
    assert!(
        status.contains("WATCHDOG") && status.contains("NETWORK HEALTH"),
        "{status}"
    );

    let bad = cli(&tcp, &["allocate", "bad name"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("service: must match"), "{err}");
}

#[test]
fn allocate_with_a_token_then_release_it_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27020-27021", &[]);
    let tcp = format!("http://{}", d.addr);
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&cli(&tcp, &["allocate", "svc", "--json"]))).unwrap();
    let token = v["lease_token"].as_str().unwrap().to_string();
    let port = v["port"].to_string();
    let out = stdout(&cli(&tcp, &["release", &port, "--token", &token]));
    assert!(out.contains("quarantined until"), "{out}");
}

#[test]
fn a_client_without_a_daemon_says_how_to_fix_it() {
    let out = cli("http://127.0.0.1:1", &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the portwarden daemon") && err.contains("PORTWARDEN_ADDR"),
        "{err}"
    );
}

#[test]
fn check_prints_one_line_per_check_and_the_status_line() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = Command::new(bin())
        .args(["check", "--port", &port])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.starts_with(&format!(
            "[NETWORK-HARDENING] Running comprehensive checks for port {port}"
        )),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 12, "{text}");
    assert!(
        lines.iter().all(|l| ["✓", "ℹ", "⚠", "✗"]
            .iter()
            .any(|m| l.trim_start().starts_with(m))),
        "{text}"
    );
    let fw = lines.iter().find(|l| l.contains("firewall:")).unwrap();
    assert!(fw.contains("in use"), "{fw}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("[NETWORK-HARDENING] Status: "),
        "{text}"
    );

    let out = Command::new(bin())
        .args(["check", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["checks"].as_object().unwrap().len(),
        11,
        "no per-port checks without --port"
    );
    assert!(["healthy", "warning", "critical"].contains(&v["status"].as_str().unwrap()));
    assert_eq!(out.status.success(), v["status"] != "critical");

    let out = Command::new(bin())
        .args(["check", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap refuses port 0");
}
