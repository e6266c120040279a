//! `portwarden watch` follows events as one JSON object per line and picks up where it left
//! off when the daemon restarts; `portwarden history` answers "who had this port".

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{bin, ChildDaemon};

fn cli(addr: &str, args: &[&str]) -> String {
    let o = common::cli(addr, args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn watch_follows_events_as_json_lines_across_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let range = "29800-29805";
    let mut d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let unix = format!("unix:{}", d.socket.display());
    let mut watcher = Command::new(bin())
        .args(["watch", "--json", "--kind", "allocated"])
        .env("PORTWARDEN_ADDR", &unix)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start watch");
    let (tx, rx) = mpsc::channel();
    let out = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The watch is connected once it has a place among the subscribers.
    let connected = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        cli(&unix, &["status", "--json"]).contains("\"subscribers\": 1")
    });
    assert!(connected, "the watch connected");
    cli(&unix, &["allocate", "before", "-q"]);
    let first: serde_json::Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(first["kind"], "allocated");
    assert_eq!(first["service"], "before");

    assert!(d.terminate().success());
    let d = ChildDaemon::spawn(dir.path(), range, &["--quarantine", "0s"]);
    let unix = format!("unix:{}", d.socket.display());
    cli(&unix, &["allocate", "after", "-q"]);
    let second: serde_json::Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(15)).unwrap()).unwrap();
    assert_eq!(second["service"], "after", "resumed after the restart");
    assert!(second["sequence"].as_u64() > first["sequence"].as_u64());
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing twice"
    );
    let _ = watcher.kill();
    let _ = watcher.wait();
}

#[test]
fn history_tells_who_had_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29810-29810", &["--quarantine", "0s"]);
    let unix = format!("unix:{}", d.socket.display());
    cli(&unix, &["allocate", "first", "-q"]);
    cli(&unix, &["release", "29810"]);
    cli(&unix, &["allocate", "second", "-q"]);
    let text = cli(&unix, &["history", "29810"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("allocated 29810 second"), "{text}");
    assert!(lines[1].contains("released 29810 first"), "{text}");
    assert!(lines[2].contains("allocated 29810 first"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&cli(&unix, &["history", "--service", "first", "--json"])).unwrap();
    let kinds: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["released", "allocated"]);
}
