//! One daemon per network namespace: a second daemon in the same namespace is refused, naming
//! the first one's PID and state file, and changes nothing; a daemon in another namespace (one
//! this test creates with `unshare -n`) is unaffected and hands out the same ports.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, can_unshare, ChildDaemon};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `portwarden serve` in a new network namespace (loopback up), as a child of this test.
fn serve_in_new_namespace(dir: &std::path::Path, range: &str, lock: &str) -> Child {
    Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--range", range])
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--unix-socket")
        .arg(dir.join("pw.sock"))
        .args(["--netns-lock", lock, "--watchdog-interval", "200ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("unshare")
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_daemon_in_the_namespace_is_refused_and_another_namespace_is_unaffected() {
    if !can_unshare() {
        return;
    }
    let lock = format!("@portwarden-netns-test-{}", std::process::id());
    let first_dir = tempfile::tempdir().unwrap();
    let first = ChildDaemon::spawn(first_dir.path(), "27300-27305", &["--netns-lock", &lock]);

    // The same namespace: refused at once, naming the first, and nothing of its own created.
    let second_dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--range", "27300-27305"])
        .arg("--state")
        .arg(second_dir.path().join("state.db"))
        .arg("--unix-socket")
        .arg(second_dir.path().join("pw.sock"))
        .args(["--netns-lock", &lock])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("another portwarden daemon already serves this network namespace"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.child.id())),
        "names the first one's PID: {err}"
    );
    assert!(
        err.contains(&format!(
            "state {}",
            first_dir.path().join("state.db").display()
        )),
        "names its state: {err}"
    );
    assert!(err.contains(&first.addr.to_string()), "{err}");
    assert!(
        !second_dir.path().join("state.db").exists() && !second_dir.path().join("pw.sock").exists(),
        "a refused daemon changes nothing"
    );

    // Another namespace: the same name, the same range, its own daemon.
    let other_dir = tempfile::tempdir().unwrap();
    let _other = Kill(serve_in_new_namespace(
        other_dir.path(),
        "27300-27305",
        &lock,
    ));
    let socket = other_dir.path().join("pw.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the other namespace's daemon never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let allocate = |sock: &std::path::Path| {
        let out = Command::new(bin())
            .args(["allocate", "web", "--quiet", "--wait", "10s"])
            .env("PORTWARDEN_ADDR", format!("unix:{}", sock.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // Ports belong to a namespace: each daemon hands out its own 27300.
    assert_eq!(allocate(&first.socket), "27300");
    assert_eq!(allocate(&socket), "27300");
}

#[test]
fn the_default_claim_is_one_per_namespace() {
    if !can_unshare() {
        return;
    }
    // Two daemons with their defaults, different state files, in a namespace of their own
    // (so that no other daemon on this host is involved); bounded by timeout(1).
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
ip link set lo up
"$0" serve --listen 127.0.0.1:0 --unix-socket "$1/a.sock" --state "$1/a.db" --range 27310-27315 2>"$1/a.log" &
first=$!
i=0
while [ ! -S "$1/a.sock" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
"$0" serve --listen 127.0.0.1:0 --unix-socket "$1/b.sock" --state "$1/b.db" --range 27310-27315 2>"$1/b.log"
echo "second=$? first=$first"
kill $first
wait $first
"#;
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "unshare", "-n", "sh", "-c", script])
        .arg(bin())
        .arg(dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTWARDEN_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let b_log = std::fs::read_to_string(dir.path().join("b.log")).unwrap_or_default();
    let first_pid = said
        .split("first=")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    assert!(said.contains("second=2 "), "{said}\n{b_log}");
    assert!(b_log.contains("@portwarden"), "{b_log}");
    assert!(b_log.contains(&format!("pid {first_pid}")), "{b_log}");
    assert!(
        b_log.contains(&dir.path().join("a.db").display().to_string()),
        "{b_log}"
    );
}

#[test]
fn the_refusal_of_a_second_daemon_says_when_to_use_netns_lock() {
    let lock = format!("@portwarden-netns-hint-{}", std::process::id());
    let first_dir = tempfile::tempdir().unwrap();
    let _first = ChildDaemon::spawn(first_dir.path(), "31660-31665", &["--netns-lock", &lock]);
    // portwarden serve --state /tmp/other.db (the namespace's name is the test's own)
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--range", "31660-31665"])
        .arg("--state")
        .arg(other.path().join("other.db"))
        .arg("--unix-socket")
        .arg(other.path().join("pw.sock"))
        .args(["--netns-lock", &lock])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "to run two daemons here on purpose (ranges that do not overlap), give each its own \
             --netns-lock name"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_a_netns_lock_a_daemon_warns_that_nothing_stops_a_second_one() {
    let first_dir = tempfile::tempdir().unwrap();
    let _first = ChildDaemon::spawn(first_dir.path(), "31666-31669", &[]);
    // portwarden serve --netns-lock none, on the same range with a state of its own
    let second_dir = tempfile::tempdir().unwrap();
    let second = ChildDaemon::spawn(second_dir.path(), "31666-31669", &["--netns-lock", "none"]);
    second
        .wait_for_log(
            "netns_lock is none: nothing stops another portwarden daemon in this network \
             namespace from handing out the same ports",
        )
        .unwrap_or_else(|log| panic!("{log}"));
}
