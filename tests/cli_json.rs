//! docs/cli-json.md documents every `--json` shape; this runs each command against a real daemon
//! and checks its output has exactly the documented keys, with the documented types (`null` is
//! allowed for any field: a field that does not apply is null). A `"*"` key in the document
//! stands for any key of a map, whose object values may carry more fields than documented.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, ChildDaemon, Owner};
use serde_json::Value;

/// The ```json NAME blocks of the document.
fn documented() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli-json.md"),
    )
    .unwrap();
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```json ") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let value: Value = serde_json::from_str(&body.join("\n"))
            .unwrap_or_else(|e| panic!("block {name} is not JSON: {e}"));
        assert!(
            out.insert(name.trim().to_string(), value).is_none(),
            "block {name} twice"
        );
    }
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences between the documented shape and a real value, one line each.
fn conform(doc: &Value, real: &Value, path: &str, open: bool, out: &mut Vec<String>) {
    match (doc, real) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(d), Value::Object(r)) if d.contains_key("*") => {
            for (k, v) in r {
                conform(&d["*"], v, &format!("{path}.{k}"), true, out);
            }
        }
        (Value::Object(d), Value::Object(r)) => {
            for k in d.keys().filter(|k| !r.contains_key(*k)) {
                out.push(format!("{path}.{k}: documented, not printed"));
            }
            if !open {
                for k in r.keys().filter(|k| !d.contains_key(*k)) {
                    out.push(format!("{path}.{k}: printed, not documented"));
                }
            }
            for (k, v) in r {
                if let Some(dv) = d.get(k) {
                    conform(dv, v, &format!("{path}.{k}"), false, out);
                }
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if let Some(first) = d.first() {
                for (i, v) in r.iter().enumerate() {
                    conform(first, v, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        (d, r) if kind(d) == kind(r) => {}
        (d, r) => out.push(format!(
            "{path}: documented {}, printed {}",
            kind(d),
            kind(r)
        )),
    }
}

fn run(addr: &str, args: &[&str]) -> Value {
    let out = Command::new(bin())
        .args(args)
        .env("PORTWARDEN_ADDR", addr)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} did not print JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn every_json_shape_is_documented_as_printed() {
    let docs = documented();
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27400-27405", &[]);
    let unix = format!("unix:{}", d.socket.display());
    let mut owner = Owner::spawn(true, false);
    let pid = owner.pid().to_string();
    let mut real: Vec<(&str, Value)> = Vec::new();

    let allocated = run(
        &unix,
        &[
            "allocate",
            "web",
            "--ttl",
            "5m",
            "--pid",
            &pid,
            "--label",
            "team=infra",
            "--json",
        ],
    );
    let port = allocated["allocation"]["port"]
        .as_u64()
        .unwrap()
        .to_string();
    owner.start_on(port.parse().unwrap());
    real.push(("allocate", allocated));
    // The watchdog's pass fills in what it saw.
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let v = run(&unix, &["get", &port, "--json"]);
        if v["observed"]["process"].is_object() {
            break v;
        }
        assert!(Instant::now() < deadline, "never observed: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    real.push(("allocation", seen));
    real.push(("allocation", run(&unix, &["renew", &port, "--json"])));
    let other = run(&unix, &["allocate", "gone", "--json"]);
    let other_port = other["allocation"]["port"].to_string();
    real.push(("release", run(&unix, &["release", &other_port, "--json"])));
    real.push(("list", run(&unix, &["list", "--json"])));
    let outside = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let outside_port = outside.local_addr().unwrap().port().to_string();
    real.push((
        "who",
        run(&unix, &["who", &port, &other_port, &outside_port, "--json"]),
    ));
    real.push(("status", run(&unix, &["status", "--json"])));
    real.push((
        "check",
        run(&unix, &["check", "--port", &outside_port, "--json"]),
    ));
    for event in run(
        &unix,
        &[
            "history",
            "--service",
            "web",
            "--kind",
            "allocated",
            "--json",
        ],
    )
    .as_array()
    .unwrap()
    {
        real.push(("event", event.clone()));
    }
    let mut watch = Command::new(bin())
        .args(["watch", "--json", "--since", "0", "--kind", "allocated"])
        .env("PORTWARDEN_ADDR", &unix)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    real.push(("event", serde_json::from_str(&line).unwrap()));
    real.push(("health", run(&unix, &["health", "--json"])));
    let project = tempfile::tempdir().unwrap();
    let project = std::fs::canonicalize(project.path()).unwrap();
    let dir = project.to_str().unwrap();
    run(&unix, &["allocate", "api", "--project", dir, "--json"]);
    real.push(("ports", run(&unix, &["ports", "--project", dir, "--json"])));
    real.push(("wait", run(&unix, &["wait", &port, "--json"])));
    real.push((
        "forget",
        run(&unix, &["forget", "--project", dir, "--json"]),
    ));
    real.push(("error", run(&unix, &["get", "27405", "--json"])));

    let mut problems = Vec::new();
    for (name, value) in &real {
        let doc = docs
            .get(*name)
            .unwrap_or_else(|| panic!("no ```json {name} block in docs/cli-json.md"));
        conform(doc, value, name, false, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "docs/cli-json.md and the real output differ:\n{}",
        problems.join("\n")
    );
    for name in docs.keys() {
        assert!(
            real.iter().any(|(n, _)| n == name),
            "block {name} is checked against nothing"
        );
    }
    drop(outside);
}

/// Every command with `--json` has its shape in the document.
#[test]
fn every_command_with_json_is_in_the_document() {
    use clap::CommandFactory;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli-json.md"),
    )
    .unwrap();
    for cmd in portwarden::cli::Cli::command().get_subcommands() {
        if cmd.get_arguments().any(|a| a.get_id() == "json") {
            let name = cmd.get_name();
            assert!(
                text.contains(&format!("`{name} ")) || text.contains(&format!("## {name}")),
                "{name} --json is not in docs/cli-json.md"
            );
        }
    }
}
