//! A service name with a character outside the rule is refused naming that character in a way
//! a reader can see: a NUL (or any control or blank character) by its code point, not as a
//! blank between quotes. Sent by an unprivileged account of the test's own over loopback TCP.

mod common;

#[path = "support/attacker.rs"]
mod attacker;

use attacker::Attacker;
use common::ChildDaemon;

#[test]
fn a_nul_in_a_service_name_is_named_as_a_nul() {
    let Some(attacker) = Attacker::create("nul") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(dir.path(), "32400-32404", &[]);
    let script = format!(
        r#"
for name in ("a\\u0000b", "a b", "a\\tb", "a:b"):
    body = ('{{"service":"' + name + '"}}').encode()
    s = socket.create_connection(("{ip}", {port}), timeout=5)
    s.sendall(b"POST /api/ports/allocations HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    print(got.hex(), flush=True)
"#,
        ip = d.addr.ip(),
        port = d.addr.port(),
    );
    let out = attacker.python(&script).output().expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|hex| {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect();
    assert_eq!(replies.len(), 4);
    for (reply, named) in replies.iter().zip(["U+0000", "U+0020", "U+0009", "':'"]) {
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert!(reply.contains(named), "the refusal names {named}: {reply}");
        assert!(
            reply.contains("service"),
            "the refusal names the field: {reply}"
        );
    }
    assert!(
        d.wait_for_log("U+0000").is_ok(),
        "the log line names the NUL too"
    );
}
