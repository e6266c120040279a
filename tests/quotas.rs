//! One local user must not starve the others: a uid holds at most half the range (by default),
//! a service name at most its quota, and a service name belongs to the uid that first used it.
//! Enforced the same over the Unix socket and loopback TCP.

mod common;

use std::process::{Command, Output};

use common::{bin, cli_as_nobody, ChildDaemon};

fn as_root(addr: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("PORTWARDEN_ADDR", addr)
        .output()
        .expect("the CLI")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn one_uid_gets_at_most_half_the_range_and_others_still_get_ports() {
    if !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "30100-30109", &["--quarantine", "0s"]);
    let tcp = format!("http://{}", d.addr);
    let mut granted = 0;
    let mut refusal = String::new();
    for i in 0..10 {
        let o = cli_as_nobody(Some(&tcp), &["allocate", &format!("greedy{i}"), "-q"]);
        if o.status.success() {
            granted += 1;
        } else {
            refusal = stderr(&o);
            break;
        }
    }
    assert_eq!(granted, 5, "half of 10 ports: {refusal}");
    assert!(
        refusal.contains("max_ports_per_uid"),
        "the quota is named: {refusal}"
    );
    assert!(refusal.contains("uid 65534"), "{refusal}");
    // Another user (root is exempt anyway) still gets the rest.
    let unix = format!("unix:{}", d.socket.display());
    for i in 0..5 {
        let o = as_root(&unix, &["allocate", &format!("others{i}"), "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

#[test]
fn a_service_name_belongs_to_the_uid_that_first_used_it() {
    if !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "30110-30119", &["--quarantine", "0s"]);
    let tcp = format!("http://{}", d.addr);
    let first = as_root(&tcp, &["allocate", "payments", "-q"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let port = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(as_root(&tcp, &["release", &port]).status.success());
    // payments' sticky port is free now: another user calling itself payments is refused.
    let impostor = cli_as_nobody(Some(&tcp), &["allocate", "payments", "-q"]);
    assert!(!impostor.status.success());
    let msg = stderr(&impostor);
    assert!(msg.contains("'payments' belongs to uid 0"), "{msg}");
    // Its own name is its own, across restarts of the daemon too.
    assert!(cli_as_nobody(Some(&tcp), &["allocate", "mine", "-q"])
        .status
        .success());
    drop(d);
    let d = ChildDaemon::spawn(dir.path(), "30110-30119", &["--quarantine", "0s"]);
    let tcp = format!("http://{}", d.addr);
    assert!(!cli_as_nobody(Some(&tcp), &["allocate", "payments", "-q"])
        .status
        .success());
    assert!(cli_as_nobody(Some(&tcp), &["allocate", "mine", "-q"])
        .status
        .success());
    let back = as_root(&tcp, &["allocate", "payments", "-q"]);
    assert_eq!(
        String::from_utf8_lossy(&back.stdout).trim(),
        port,
        "its sticky port"
    );
}

#[test]
fn a_service_holds_at_most_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(
        dir.path(),
        "30120-30129",
        &["--quarantine", "0s", "--max-ports-per-service", "3"],
    );
    let unix = format!("unix:{}", d.socket.display());
    for _ in 0..3 {
        let o = as_root(&unix, &["allocate", "web", "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let fourth = as_root(&unix, &["allocate", "web", "-q"]);
    assert!(!fourth.status.success());
    assert!(
        stderr(&fourth).contains("max_ports_per_service"),
        "{}",
        stderr(&fourth)
    );
    let bad = Command::new(bin())
        .args(["serve", "--max-ports-per-uid", "120%"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("max_ports_per_uid"),
        "{}",
        stderr(&bad)
    );
}
