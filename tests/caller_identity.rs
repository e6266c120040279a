//! A caller over loopback TCP is who the kernel says owns its socket, as one over the Unix
//! socket is: its own allocations are its to release without a token, anyone else's are not,
//! and root's are root's. A remote caller (or one that cannot be identified) needs the token.

mod common;

use std::process::Output;

use common::{cli, cli_as_nobody, ChildDaemon};

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON")
}

#[test]
fn loopback_tcp_callers_are_identified_like_unix_socket_callers() {
    if !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "29900-29905", &["--quarantine", "0s"]);
    let tcp = format!("http://{}", d.addr);

    // Made over TCP, the allocations carry their callers' uids.
    let mine = json(&cli_as_nobody(
        Some(&tcp),
        &["allocate", "nobodys", "--json"],
    ))["allocation"]
        .clone();
    assert_eq!(mine["owner_uid"], 65534, "{mine}");
    let roots = json(&cli(&tcp, &["allocate", "roots", "--json"]))["allocation"].clone();
    assert_eq!(roots["owner_uid"], 0, "{roots}");
    let (mine, roots) = (mine["port"].to_string(), roots["port"].to_string());

    // Another uid, no token: refused, over TCP as over the Unix socket.
    let refused = cli_as_nobody(Some(&tcp), &["release", &roots]);
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("uid 65534 is not the owner"), "{msg}");
    // Its own, no token: released.
    let released = cli_as_nobody(Some(&tcp), &["release", &mine]);
    assert!(
        released.status.success(),
        "{}",
        String::from_utf8_lossy(&released.stderr)
    );
    // Root's own, no token, over TCP.
    assert!(cli(&tcp, &["release", &roots]).status.success());
}
