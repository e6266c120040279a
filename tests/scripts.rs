//! The script patterns of the README, run as a shell script runs them: `--reuse` gives a script
//! its own port back instead of leaking one per run (and never someone else's), a TTL needs a
//! unit, a permanent allocation does not silently become a lease, `--prefer` falls back to any
//! port, and a refusal says how to fix it.

mod common;

#[path = "support/http.rs"]
mod http;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use common::{bin, cli, cli_command_as_nobody, ChildDaemon, Owner};
use serde_json::{json, Value};

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}): {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn list(addr: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(&ok(&cli(addr, &["list", "--json"])))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A daemon whose Unix socket other users can reach (its directory opened up).
fn daemon(range: &str) -> (tempfile::TempDir, ChildDaemon, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let unix = format!("unix:{}", d.socket.display());
    let tcp = format!("http://{}", d.addr);
    (dir, d, unix, tcp)
}

#[test]
fn reuse_gives_a_script_its_own_port_back_and_nobody_else_gets_it() {
    let (_dir, _d, unix, _tcp) = daemon("27100-27110");
    // Three runs of `PORT=$(portwarden allocate devscript --reuse --quiet)`: one port.
    let first = ok(&cli(
        &unix,
        &["allocate", "devscript", "--reuse", "--quiet"],
    ));
    for _ in 0..2 {
        assert_eq!(
            ok(&cli(
                &unix,
                &["allocate", "devscript", "--reuse", "--quiet"]
            )),
            first
        );
    }
    assert_eq!(list(&unix).len(), 1, "three runs, one port");
    // The JSON says it was reused, and hands back the same token.
    let a: Value = serde_json::from_str(&ok(&cli(
        &unix,
        &["allocate", "devscript", "--reuse", "--json"],
    )))
    .unwrap();
    let b: Value = serde_json::from_str(&ok(&cli(
        &unix,
        &["allocate", "devscript", "--reuse", "--json"],
    )))
    .unwrap();
    assert_eq!(a["reused"], true);
    assert_eq!(a["lease_token"], b["lease_token"]);
    assert_eq!(a["allocation"]["port"].to_string(), first.trim());

    // Replicas (no --reuse) keep getting their own ports.
    let replica = ok(&cli(&unix, &["allocate", "devscript", "--quiet"]));
    assert_ne!(replica, first);

    // Another user cannot take the name, so never our port: the name is ours.
    let (_copy, mut as_nobody) = cli_command_as_nobody();
    let refused = as_nobody
        .args(["allocate", "devscript", "--reuse", "--quiet"])
        .env("PORTWARDEN_ADDR", &unix)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("belongs to uid 0"),
        "{}",
        stderr(&refused)
    );
    // Under a name of its own it gets a port of its own, and that one back on reuse.
    let (_copy, mut as_nobody) = cli_command_as_nobody();
    let theirs = as_nobody
        .args(["allocate", "nobodyscript", "--reuse", "--quiet"])
        .env("PORTWARDEN_ADDR", &unix)
        .output()
        .unwrap();
    let theirs = ok(&theirs);
    assert_ne!(theirs, first);
    assert_ne!(theirs, replica);
    let (_copy, mut again) = cli_command_as_nobody();
    let again = again
        .args(["allocate", "nobodyscript", "--reuse", "--quiet"])
        .env("PORTWARDEN_ADDR", &unix)
        .output()
        .unwrap();
    assert_eq!(ok(&again), theirs, "nobody's own port comes back to nobody");
    assert_eq!(list(&unix).len(), 3);
}

/// The rule itself, on the caller the transport vouches for: an unidentified caller (a remote
/// one) is refused rather than handed a new port each time.
#[test]
fn reuse_needs_a_caller_the_daemon_can_identify() {
    use portwarden::ports::{AllocateRequest, Allocator, AllocatorConfig, Caller, PortsError};
    let dir = tempfile::tempdir().unwrap();
    let (allocator, _) = Allocator::open(AllocatorConfig {
        ranges: portwarden::ports::RangeSet::new(vec!["27180-27185".parse().unwrap()]).unwrap(),
        test_pool: None,
        quarantine: std::time::Duration::ZERO,
        state_path: dir.path().join("state.db"),
        quotas: Default::default(),
        accept_state_loss: false,
    })
    .unwrap();
    let req = || AllocateRequest {
        service: "s".into(),
        reuse: true,
        ..Default::default()
    };
    let user = |uid| Caller {
        uid: Some(uid),
        pid: Some(1),
    };
    let err = allocator.allocate(req(), &Caller::REMOTE).unwrap_err();
    assert!(
        matches!(err, PortsError::CallerUnknown { what: "reuse" }),
        "{err}"
    );
    assert!(allocator.list(None).is_empty());
    let mine = allocator.allocate(req(), &user(1000)).unwrap();
    assert!(!mine.reused);
    let again = allocator.allocate(req(), &user(1000)).unwrap();
    assert!(again.reused);
    assert_eq!(again.allocation.port, mine.allocation.port);
    assert_eq!(again.allocation.lease_token, mine.allocation.lease_token);
    // Another user asking to reuse the name is refused: the name, and so the port, is 1000's.
    let theirs = allocator.allocate(req(), &user(1001)).unwrap_err();
    assert!(
        matches!(
            theirs,
            PortsError::NameTaken {
                owner_uid: 1000,
                ..
            }
        ),
        "{theirs}"
    );
}

#[test]
fn reuse_of_a_process_owned_port_needs_the_same_process() {
    let (_dir, _d, unix, _tcp) = daemon("27120-27125");
    let (a, b) = (Owner::spawn(false, false), Owner::spawn(false, false));
    let (pid_a, pid_b) = (a.pid().to_string(), b.pid().to_string());
    let mine = ok(&cli(
        &unix,
        &["allocate", "job", "--reuse", "--pid", &pid_a, "--quiet"],
    ));
    let again = ok(&cli(
        &unix,
        &["allocate", "job", "--reuse", "--pid", &pid_a, "--quiet"],
    ));
    assert_eq!(mine, again, "the same process gets its port back");
    let other = ok(&cli(
        &unix,
        &["allocate", "job", "--reuse", "--pid", &pid_b, "--quiet"],
    ));
    assert_ne!(
        other, mine,
        "another process of the same user is another owner"
    );
    let unowned = ok(&cli(&unix, &["allocate", "job", "--reuse", "--quiet"]));
    assert_ne!(
        unowned, mine,
        "a permanent request is not a process's allocation"
    );

    // A lease is renewed by the reuse: asking again is a sign of life.
    let lease = |ttl: &str| -> Value {
        serde_json::from_str::<Value>(&ok(&cli(
            &unix,
            &["allocate", "worker", "--reuse", "--ttl", ttl, "--json"],
        )))
        .unwrap()["allocation"]
            .clone()
    };
    let short = lease("1m");
    let long = lease("1h");
    assert_eq!(short["port"], long["port"]);
    assert_eq!(long["ttl_seconds"], 3600);
    assert!(long["expires_at"].as_str() > short["expires_at"].as_str());
}

#[test]
fn a_refused_release_says_how_to_fix_it() {
    let (_dir, _d, unix, _tcp) = daemon("27130-27132");
    let port = ok(&cli(&unix, &["allocate", "web", "--quiet"]));
    let (_copy, mut as_nobody) = cli_command_as_nobody();
    let denied = as_nobody
        .args(["release", port.trim()])
        .env("PORTWARDEN_ADDR", &unix)
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(6), "denied: {}", stderr(&denied));
    assert!(
        stderr(&denied).contains(
            "release or renew as the user that allocated it (over the Unix socket or loopback \
             TCP), or pass --token; the token was printed by allocate (use --json to keep it)"
        ),
        "{}",
        stderr(&denied)
    );
    ok(&cli(&unix, &["release", port.trim()]));
}

#[test]
fn a_ttl_on_a_permanent_allocation_is_refused_unless_asked_for() {
    let (_dir, _d, unix, _tcp) = daemon("27140-27142");
    let port = ok(&cli(&unix, &["allocate", "web", "--quiet"]));
    let port = port.trim();
    let refused = cli(&unix, &["renew", port, "--ttl", "5m"]);
    assert_eq!(refused.status.code(), Some(64), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--convert-to-lease"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(list(&unix)[0]["owner_kind"], "permanent", "nothing changed");
    let renewed: Value = serde_json::from_str(&ok(&cli(
        &unix,
        &["renew", port, "--ttl", "5m", "--convert-to-lease", "--json"],
    )))
    .unwrap();
    assert_eq!(renewed["owner_kind"], "lease");
    assert_eq!(renewed["ttl_seconds"], 300);
    // A lease may change its length freely.
    ok(&cli(&unix, &["renew", port, "--ttl", "10m"]));
}

#[test]
fn a_ttl_needs_a_unit_and_allocate_shows_what_it_recorded() {
    let (_dir, _d, unix, _tcp) = daemon("27150-27152");
    let bare = cli(&unix, &["allocate", "web", "--ttl", "5"]);
    assert_eq!(bare.status.code(), Some(64));
    assert!(
        stderr(&bare).contains("'5' needs a unit: 5s, 5m or 5h"),
        "{}",
        stderr(&bare)
    );
    assert!(list(&unix).is_empty(), "nothing allocated");

    let out = ok(&cli(
        &unix,
        &["allocate", "web", "--ttl", "5m", "--label", "team=infra"],
    ));
    assert!(
        out.contains("Owner: lease of 5m: reclaimed at "),
        "the owner and the expiry: {out}"
    );
    assert!(out.contains("Labels: team=infra"), "{out}");
    let owner = Owner::spawn(false, false);
    let out = ok(&cli(
        &unix,
        &["allocate", "api", "--pid", &owner.pid().to_string()],
    ));
    assert!(
        out.contains(&format!(
            "Owner: process {}: reclaimed when it exits",
            owner.pid()
        )),
        "{out}"
    );
    let out = ok(&cli(&unix, &["allocate", "db"]));
    assert!(
        out.contains("Owner: permanent: kept until released"),
        "{out}"
    );
}

#[test]
fn prefer_takes_the_port_when_free_else_any() {
    let (_dir, d, unix, _tcp) = daemon("27160-27165");
    let got = ok(&cli(
        &unix,
        &["allocate", "a", "--prefer", "27163", "--quiet"],
    ));
    assert_eq!(got.trim(), "27163");
    let other = ok(&cli(
        &unix,
        &["allocate", "b", "--prefer", "27163", "--quiet"],
    ));
    assert_ne!(other.trim(), "27163", "taken: any other port");
    // Outside the range is not free: any port, with a warning (tests/cli.rs).
    let outside = cli(&unix, &["allocate", "c", "--prefer", "9", "--quiet"]);
    assert_ne!(ok(&outside).trim(), "9");
    assert!(
        stderr(&outside).contains("prefer: 9 is outside"),
        "{}",
        stderr(&outside)
    );
    let both = cli(
        &unix,
        &["allocate", "c", "--prefer", "27164", "--port", "27164"],
    );
    assert_eq!(both.status.code(), Some(64));

    // The same over REST.
    let rest = http::Addr::Unix(d.socket.clone());
    let r = http::post_json(
        &rest,
        "/api/ports/allocations",
        &json!({"service": "d", "prefer": 27163}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_ne!(r.json()["allocation"]["port"], 27163);
    // Outside the range: the same rule, said in the allocation's warnings.
    let r = http::post_json(
        &rest,
        "/api/ports/allocations",
        &json!({"service": "e", "prefer": 9000}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let warnings = r.json()["warnings"].clone();
    assert!(
        warnings.as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("prefer: 9000 is outside the managed ranges (27160-27165)")),
        "{warnings}"
    );
}

#[test]
fn rest_reuse_answers_200_with_the_same_allocation() {
    let (_dir, d, _unix, _tcp) = daemon("27170-27172");
    let rest = http::Addr::Unix(d.socket.clone());
    let body = json!({"service": "r", "reuse": true});
    let first = http::post_json(&rest, "/api/ports/allocations", &body);
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["reused"], false);
    let second = http::post_json(&rest, "/api/ports/allocations", &body);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.json()["reused"], true);
    assert_eq!(
        first.json()["allocation"]["port"],
        second.json()["allocation"]["port"]
    );
    assert_eq!(first.json()["lease_token"], second.json()["lease_token"]);
}

#[test]
fn rest_renew_refuses_a_silent_lease_and_status_names_the_daemon() {
    let (dir, d, _unix, _tcp) = daemon("27190-27192");
    let rest = http::Addr::Unix(d.socket.clone());
    let made = http::post_json(&rest, "/api/ports/allocations", &json!({"service": "p"}));
    let port = made.json()["allocation"]["port"].as_u64().unwrap();
    let renew = format!("/api/ports/allocations/{port}/renew");
    let refused = http::post_json(&rest, &renew, &json!({"ttl_seconds": 60}));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        refused.json()["details"][0]["field_violations"][0]["field"],
        "ttl_seconds"
    );
    let converted = http::post_json(
        &rest,
        &renew,
        &json!({"ttl_seconds": 60, "convert_to_lease": true}),
    );
    assert_eq!(converted.status, 200, "{}", converted.text());
    assert_eq!(converted.json()["owner_kind"], "lease");

    let status = http::get(&rest, "/api/ports/status").json();
    assert_eq!(status["daemon"]["pid"], d.child.id());
    assert_eq!(status["daemon"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        status["daemon"]["state_path"],
        dir.path().join("state.db").display().to_string()
    );
    let listeners = status["daemon"]["listeners"].as_array().unwrap();
    assert_eq!(
        listeners[..2],
        [
            json!(d.addr.to_string()),
            json!(format!("unix:{}", d.socket.display()))
        ]
    );
    // The portserver endpoint, on by default beside the namespace claim.
    let portserver = listeners[2].as_str().unwrap();
    assert!(
        portserver.starts_with("portserver @portwarden-test-")
            && portserver.ends_with("-portserver"),
        "{portserver}"
    );
}

/// A token typed on the command line is readable by every local user (ps): it works, with a
/// warning; the environment and a token file are the quiet ways.
#[test]
fn tokens_come_from_the_environment_or_a_file_and_the_command_line_is_warned_about() {
    let (dir, _d, unix, _tcp) = daemon("27140-27142");
    let json: Value =
        serde_json::from_str(&ok(&cli(&unix, &["allocate", "tok", "--json"]))).unwrap();
    let port = json["allocation"]["port"].to_string();
    let token = json["lease_token"].as_str().unwrap().to_string();
    let warning = "can be read by other users";

    let typed = cli(&unix, &["renew", &port, "--token", &token]);
    ok(&typed);
    assert!(stderr(&typed).contains(warning), "{}", stderr(&typed));

    let from_env = Command::new(bin())
        .args(["renew", &port])
        .env("PORTWARDEN_ADDR", &unix)
        .env("PORTWARDEN_LEASE_TOKEN", "not-the-token")
        .output()
        .unwrap();
    assert_eq!(
        from_env.status.code(),
        Some(6),
        "the environment's token is sent"
    );
    assert!(!stderr(&from_env).contains(warning));

    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let from_file = cli(
        &unix,
        &["release", &port, "--token-file", file.to_str().unwrap()],
    );
    ok(&from_file);
    assert!(
        !stderr(&from_file).contains(warning),
        "{}",
        stderr(&from_file)
    );

    std::fs::write(&file, "").unwrap();
    let empty = cli(
        &unix,
        &["release", &port, "--token-file", file.to_str().unwrap()],
    );
    assert_eq!(empty.status.code(), Some(64));
    assert!(
        stderr(&empty).contains("--token-file"),
        "{}",
        stderr(&empty)
    );
}
