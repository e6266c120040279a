//! Reaching the daemon, and saying why not: permission denied is told apart from nothing
//! listening, every address tried is named, and `--wait` waits for a daemon that is starting.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, bin_for_nobody, can_unshare, cli_command_as_nobody, is_root, ChildDaemon};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn permission_denied_is_told_apart_from_nothing_listening() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = ChildDaemon::spawn(dir.path(), "27200-27201", &[]);
    // As a root daemon's socket created 0700 would be.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (_copy, mut cmd) = cli_command_as_nobody();
    let out = cmd
        .args(["list"])
        .env("PORTWARDEN_ADDR", format!("unix:{}", d.socket.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "permission denied on {} (you are uid 65534, the socket is root:root 0700)",
            d.socket.display()
        )),
        "{}",
        stderr(&out)
    );

    // A socket file nobody listens on any more.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = Command::new(bin())
        .args(["list"])
        .env("PORTWARDEN_ADDR", format!("unix:{}", stale.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains(&format!("nothing listens at {}", stale.display())),
        "{}",
        stderr(&out)
    );
}

/// In a network namespace of its own (nothing can listen on 127.0.0.1:7070 there), a user
/// without PORTWARDEN_ADDR is told every address that was tried.
#[test]
fn every_address_tried_is_named() {
    if !can_unshare() {
        return;
    }
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_copy, binary) = bin_for_nobody();
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c"])
        .arg("ip link set lo up && exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$@\"")
        .arg("sh")
        .arg(&binary)
        .arg("list")
        .env_remove("PORTWARDEN_ADDR")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "no socket at {}",
            runtime.path().join("portwarden.sock").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("/run/portwarden/portwarden.sock"),
        "the system daemon's socket: {err}"
    );
    assert!(
        err.contains("nothing listens at http://127.0.0.1:7070 (connection refused)"),
        "{err}"
    );
    assert!(err.contains("PORTWARDEN_ADDR"), "{err}");
}

#[test]
fn wait_waits_for_a_daemon_that_is_starting() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("pw.sock");
    let started = Instant::now();
    let client = Command::new(bin())
        .args(["--wait", "20s", "list", "--json"])
        .env("PORTWARDEN_ADDR", format!("unix:{}", socket.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _d = ChildDaemon::spawn(dir.path(), "27210-27211", &[]);
    let out = client.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert!(started.elapsed() >= Duration::from_millis(800));

    // PORTWARDEN_WAIT says the same; a wait that runs out says how long it waited.
    let gone = dir.path().join("never.sock");
    let started = Instant::now();
    let out = Command::new(bin())
        .args(["list"])
        .env("PORTWARDEN_ADDR", format!("unix:{}", gone.display()))
        .env("PORTWARDEN_WAIT", "500ms")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(stderr(&out).contains("(waited 500ms)"), "{}", stderr(&out));
}
