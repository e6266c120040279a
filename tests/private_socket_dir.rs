//! Without $XDG_RUNTIME_DIR a user's socket lives in /tmp/portwarden-$UID, and /tmp is shared:
//! another user who makes that directory first must not get the user's lease tokens by posing
//! as the daemon there. Clients refuse to connect into it, and the daemon refuses to serve from
//! it, unless it is the user's own private directory.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::cli_as_nobody;

#[test]
fn a_fallback_directory_made_by_another_user_is_refused_by_client_and_daemon() {
    if !common::is_root() {
        return;
    }
    let dir = std::path::Path::new("/tmp/portwarden-65534");
    let _ = std::fs::remove_dir_all(dir);
    // Root (the "other user" here) makes nobody's fallback directory, with a fake daemon in it.
    std::fs::create_dir(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let fake = UnixListener::bind(dir.join("portwarden.sock")).unwrap();
    fake.set_nonblocking(true).unwrap();
    std::fs::set_permissions(
        dir.join("portwarden.sock"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();

    let client = cli_as_nobody(None, &["list"]);
    let msg = String::from_utf8_lossy(&client.stderr);
    assert!(!client.status.success(), "refused");
    assert!(msg.contains("belongs to uid 0, not to you"), "{msg}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        fake.accept().is_err(),
        "the fake daemon never got a connection"
    );

    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let daemon = cli_as_nobody(
        None,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.path().join("s.db").to_str().unwrap(),
            "--netns-lock",
            "none",
        ],
    );
    let msg = String::from_utf8_lossy(&daemon.stderr);
    assert!(
        !daemon.status.success(),
        "the daemon refuses to start: {msg}"
    );
    assert!(msg.contains("belongs to uid 0, not to you"), "{msg}");
    drop(fake);
    std::fs::remove_dir_all(dir).unwrap();
}
