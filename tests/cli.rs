//! The CLI as a shell script uses it, against the real daemon binary.

mod common;
#[path = "support/http.rs"]
mod http1;

use std::process::{Command, Output};

use common::{bin, cli, ChildDaemon};

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
    assert_eq!(list[1]["owner_kind"], "lease");

    let table = stdout(&cli(&tcp, &["list"]));
    assert!(
        table.starts_with("PORT") && table.contains("27000  web"),
        "{table}"
    );

    // The same uid (or root) needs no token, over the Unix socket as over loopback TCP (where
    // the socket table names the caller; see tests/caller_identity.rs for another uid).
    let released = stdout(&cli(&unix, &["release", "27000"]));
    assert!(released.contains("Released port 27000"), "{released}");

    let bad = cli(&tcp, &["allocate", "bad name"]);
    assert_eq!(bad.status.code(), Some(64), "usage");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("service: must match"), "{err}");
}

/// `status` exits 0 healthy, 1 warning, 2 critical: whatever the host's network says now.
fn network_exit_code(tcp: &str) -> i32 {
    let v: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(
        &cli(tcp, &["status", "--json"]).stdout,
    ))
    .unwrap();
    match v["network"]["status"].as_str().unwrap() {
        "healthy" => 0,
        "warning" => 1,
        _ => 2,
    }
}

#[test]
fn status_is_one_screen_naming_the_daemon_and_one_line_per_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27030-27040", &[]);
    let unix = format!("unix:{}", d.socket.display());
    for service in ["web", "api", "db"] {
        cli(&unix, &["allocate", service, "--quiet"]);
    }
    let out = cli(&unix, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(network_exit_code(&unix)), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "portwarden {} (pid {}), up ",
            env!("CARGO_PKG_VERSION"),
            d.child.id()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  listening: {}, unix:{}",
            d.addr,
            d.socket.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  state: {}",
            dir.path().join("state.db").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("ports 27030-27040: 3 allocated, 8 free, 0 resting after release, 0 unavailable (11 in all)"),
        "{text}"
    );
    assert!(text.contains("watchdog: running"), "{text}");
    assert!(text.contains("network: "), "{text}");
    let table: Vec<&&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("PORT"))
        .collect();
    assert_eq!(
        table.len(),
        4,
        "a header and one line per allocation: {text}"
    );
    assert!(table[1].starts_with("27030  web"), "{text}");
    assert!(text.lines().count() < 15, "one screen: {text}");

    let verbose =
        String::from_utf8_lossy(&cli(&unix, &["status", "--verbose"]).stdout).into_owned();
    assert!(verbose.contains("Allocated: 3 / 11 ports"), "{verbose}");
    assert!(verbose.contains("Port 27031: api"), "{verbose}");
    assert!(
        verbose.contains("WATCHDOG") && verbose.contains("NETWORK HEALTH"),
        "{verbose}"
    );
    let json: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(
        &cli(&unix, &["status", "--json"]).stdout,
    ))
    .unwrap();
    assert_eq!(json["daemon"]["pid"], d.child.id());
    assert_eq!(json["allocations"].as_array().unwrap().len(), 3);
}

#[test]
fn exit_codes_tell_refusals_apart_and_json_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27050-27051", &["--quarantine", "0s"]);
    let unix = format!("unix:{}", d.socket.display());
    let code = |args: &[&str]| cli(&unix, args).status.code();
    assert_eq!(code(&["get", "27050"]), Some(4), "not found");
    let err = cli(&unix, &["get", "27050", "--json"]);
    assert!(
        err.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&err.stdout).unwrap();
    assert_eq!(body["code"], 5, "NOT_FOUND, as REST says it");
    assert!(body["message"].as_str().unwrap().contains("27050"));
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ResourceInfo"
    );
    assert_eq!(code(&["allocate", "a", "--quiet"]), Some(0));
    assert_eq!(code(&["allocate", "b", "--quiet"]), Some(0));
    assert_eq!(code(&["allocate", "c", "--quiet"]), Some(5), "exhausted");
    assert_eq!(
        code(&["release", "27050", "--token", "0000"]),
        Some(6),
        "denied"
    );
    assert_eq!(code(&["allocate", "c", "--ttl", "soon"]), Some(64), "usage");
    assert_eq!(code(&["allocate"]), Some(64), "usage: clap");
    assert_eq!(code(&["no-such-command"]), Some(64));
    assert_eq!(code(&["--version"]), Some(0));
    assert_eq!(
        cli("http://127.0.0.1:1", &["list"]).status.code(),
        Some(3),
        "unreachable"
    );

    let unreachable: serde_json::Value =
        serde_json::from_slice(&cli("http://127.0.0.1:1", &["list", "--json"]).stdout).unwrap();
    assert_eq!(unreachable["code"], 14);
    assert_eq!(unreachable["details"][0]["reason"], "DAEMON_UNREACHABLE");
    let usage: serde_json::Value =
        serde_json::from_slice(&cli(&unix, &["list", "--json", "--bogus"]).stdout).unwrap();
    assert_eq!(usage["code"], 3);

    // The range is full: one paragraph, the holders named, the fix said.
    let full = cli(&unix, &["allocate", "c"]);
    let text = String::from_utf8_lossy(&full.stderr).into_owned();
    assert_eq!(text.trim_end().lines().count(), 1, "one paragraph: {text}");
    assert!(
        text.contains("no free port in 27050-27051 (2 ports): 2 held by 2 services (a 1, b 1)"),
        "{text}"
    );
    assert!(text.contains("--range is repeatable"), "{text}");

    // Help documents the codes.
    let help = String::from_utf8_lossy(&cli(&unix, &["--help"]).stdout).into_owned();
    for line in [
        "0   ok",
        "1   warning",
        "2   critical",
        "3   the daemon cannot be reached",
        "4   not found",
        "5   exhausted",
        "6   denied",
        "64  usage",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }
}

#[test]
fn who_names_the_holder_of_any_port() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27060-27062", &[]);
    let unix = format!("unix:{}", d.socket.display());
    let owner = common::Owner::spawn(false, false);
    cli(
        &unix,
        &[
            "allocate",
            "web",
            "--pid",
            &owner.pid().to_string(),
            "--quiet",
        ],
    );
    // A listener outside portwarden, in the range and outside it.
    let inside = std::net::TcpListener::bind("0.0.0.0:27062").unwrap();
    let outside = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let out_port = outside.local_addr().unwrap().port().to_string();
    let out = stdout(&cli(&unix, &["who", "27060", "27061", "27062", &out_port]));
    let lines: Vec<&str> = out.lines().collect();
    let me = std::process::id();
    assert!(
        lines[0].ends_with(&format!("allocated to service web (pid {})", owner.pid())),
        "{out}"
    );
    assert!(lines[1].ends_with("free"), "{out}");
    assert!(
        lines[2].contains(&format!("used by pid {me} ("))
            && lines[2].ends_with("outside portwarden"),
        "{out}"
    );
    assert!(
        lines[3].contains(&format!("used by pid {me} ("))
            && lines[3].contains("outside the managed ranges"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&cli(&unix, &["who", "27062", "--json"]))).unwrap();
    assert_eq!(json[0]["state"], "in_use");
    assert!(json[0]["holder"]
        .as_str()
        .unwrap()
        .starts_with(&format!("pid {me} (")));

    // check --port names who listens, too.
    let out = Command::new(bin())
        .args(["check", "--port", &out_port])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let fw = text.lines().find(|l| l.contains("firewall:")).unwrap();
    assert!(fw.contains(&format!("held by pid {me} (")), "{fw}");
    drop((inside, outside));
}

#[test]
fn allocate_with_a_token_then_release_it_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27020-27021", &[]);
    let tcp = format!("http://{}", d.addr);
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&cli(&tcp, &["allocate", "svc", "--json"]))).unwrap();
    let token = v["lease_token"].as_str().unwrap().to_string();
    let port = v["allocation"]["port"].to_string();
    let out = stdout(&cli(&tcp, &["release", &port, "--token", &token]));
    assert!(out.contains("quarantined until"), "{out}");
}

#[test]
fn a_client_without_a_daemon_says_how_to_fix_it() {
    let out = cli("http://127.0.0.1:1", &["list"]);
    assert_eq!(out.status.code(), Some(3));
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
    let expected = match v["status"].as_str().unwrap() {
        "healthy" => 0,
        "warning" => 1,
        "critical" => 2,
        other => panic!("status {other}"),
    };
    assert_eq!(
        out.status.code(),
        Some(expected),
        "0 healthy, 1 warning, 2 critical"
    );

    let out = Command::new(bin())
        .args(["check", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "a usage error: port 0");
}

#[test]
fn a_reader_that_goes_away_ends_the_client_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27070-27072", &[]);
    let unix = format!("unix:{}", d.socket.display());
    cli(&unix, &["allocate", "first", "--quiet"]);
    // `portwarden watch --json | head -1`
    let mut watch = Command::new(bin())
        .args(["watch", "--json", "--since", "0", "--kind", "allocated"])
        .env("PORTWARDEN_ADDR", &unix)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("\"first\""), "{line}");
    // The reader is gone; the next event's write ends the client.
    cli(&unix, &["allocate", "second", "--quiet"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while watch.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "watch kept running");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = watch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_preferred_port_outside_the_range_is_not_free_so_another_is_handed_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "31600-31604", &[]);
    let unix = format!("unix:{}", d.socket.display());
    let said = "prefer: 9000 is outside the managed ranges (31600-31604)";

    let out = cli(&unix, &["allocate", "x", "--prefer", "9000"]);
    let text = stdout(&out);
    assert!(text.contains("Allocated port 3160"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(&format!("warning: {said}")), "{err}");

    let out = cli(&unix, &["allocate", "y", "--prefer", "9000", "--quiet"]);
    let port = stdout(&out);
    assert!(port.trim().starts_with("3160"), "only the port: {port}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(said));

    let out = cli(&unix, &["allocate", "z", "--prefer", "9000", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(said)),
        "{v}"
    );

    // Exactly that port is still a usage error, and so is a number that is no port.
    let out = cli(&unix, &["allocate", "w", "--port", "9000"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port: 9000 is outside"));
    let out = cli(&unix, &["allocate", "w", "--prefer", "70000"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("prefer: 70000 is not a port number"));
}

#[test]
fn releasing_a_resting_port_says_it_rests_and_until_when() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "31630-31634", &["--quarantine", "60s"]);
    let unix = format!("unix:{}", d.socket.display());
    let port = stdout(&cli(&unix, &["allocate", "web", "--quiet"]))
        .trim()
        .to_string();
    stdout(&cli(&unix, &["release", &port]));

    let again = cli(&unix, &["release", &port]);
    assert_eq!(again.status.code(), Some(4), "not found");
    let err = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        err.contains(&format!(
            "port {port} is not allocated: it was released at 20"
        )),
        "{err}"
    );
    assert!(
        err.contains(" and rests until 20") && err.contains("(quarantine)"),
        "{err}"
    );

    let json = cli(&unix, &["release", &port, "--json"]);
    assert_eq!(json.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["code"], 5);
    assert!(
        v["message"].as_str().unwrap().contains("rests until"),
        "{v}"
    );
    // curl -X DELETE .../api/ports/allocations/PORT: the same answer, as a 404.
    let rest = http1::request(
        &http1::Addr::Unix(d.socket.clone()),
        "DELETE",
        &format!("/api/ports/allocations/{port}"),
        &[],
        None,
    );
    assert_eq!(rest.status, 404, "{}", rest.text());
    assert_eq!(rest.json()["message"], v["message"]);

    // A port nobody ever had is plainly not allocated.
    let never = cli(&unix, &["release", "31634"]);
    assert_eq!(never.status.code(), Some(4));
    let err = String::from_utf8_lossy(&never.stderr).into_owned();
    assert!(
        err.contains("port 31634 is not allocated") && !err.contains("rests"),
        "{err}"
    );
}

#[test]
fn get_shows_the_owner_and_when_the_port_was_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "31650-31654", &[]);
    let unix = format!("unix:{}", d.socket.display());
    let lease = stdout(&cli(
        &unix,
        &["allocate", "worker", "--ttl", "5m", "--quiet"],
    ))
    .trim()
    .to_string();
    let kept = stdout(&cli(&unix, &["allocate", "web", "--quiet"]))
        .trim()
        .to_string();

    for (port, owner) in [
        (&lease, "Owner: lease of 5m: reclaimed at "),
        (&kept, "Owner: permanent: kept until released"),
    ] {
        let text = stdout(&cli(&unix, &["get", port]));
        let json: serde_json::Value =
            serde_json::from_str(&stdout(&cli(&unix, &["get", port, "--json"]))).unwrap();
        assert!(text.contains(owner), "{text}");
        let at = json["allocated_at"].as_str().unwrap();
        assert!(text.contains(&format!("Allocated: {at}")), "{text}\n{json}");
    }
}

/// gRPC requests the daemon counted so far (its `/metrics`).
fn grpc_requests(d: &ChildDaemon) -> u64 {
    let metrics = http1::get(&http1::Addr::Unix(d.socket.clone()), "/metrics").text();
    metrics
        .lines()
        .filter(|l| l.starts_with("portwarden_requests_total{transport=\"grpc\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn status_is_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27041-27045", &[]);
    let unix = format!("unix:{}", d.socket.display());
    cli(&unix, &["allocate", "web", "--quiet"]);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["status", "--verbose"],
    ] {
        let before = grpc_requests(&d);
        let out = cli(&unix, args);
        assert!(out.status.code().unwrap() <= 2, "{args:?}: {out:?}");
        assert_eq!(grpc_requests(&d) - before, 1, "{args:?} is one request");
    }
}
