//! `Type=notify` as systemd sees it: the real binary, NOTIFY_SOCKET pointing at a datagram
//! socket this test owns, WATCHDOG_USEC/WATCHDOG_PID set as systemd sets them.

#[path = "support/child.rs"]
mod child;

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use child::{through_shell, Spawned};
use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::AllocateRequest;
use portwarden_client::{connect, Target};

const WATCHDOG_USEC: u64 = 4_000_000;

type Messages = Arc<Mutex<Vec<(Instant, String)>>>;

/// Every datagram sent to the socket, with its arrival time, until `stop`.
fn listen(sock: UnixDatagram, stop: Arc<AtomicBool>) -> Messages {
    let got: Messages = Arc::default();
    let keep = got.clone();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                keep.lock().unwrap().push((Instant::now(), text));
            }
        }
    });
    got
}

fn wait_for(got: &Messages, what: &str, timeout: Duration) -> (Instant, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(m) = got.lock().unwrap().iter().find(|(_, m)| m.contains(what)) {
            return m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no '{what}' within {timeout:?}; got {:?}",
            got.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_daemon_notifies_ready_status_watchdog_pings_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let got = listen(UnixDatagram::bind(&notify).unwrap(), stop.clone());

    let mut cmd = through_shell(env!("CARGO_BIN_EXE_portwarden"), &["WATCHDOG_PID"]);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--range", "26200-26210"])
        .args([
            "--netns-lock",
            &format!("@portwarden-test-{}-notify", std::process::id()),
        ])
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .arg("--unix-socket")
        .arg(dir.path().join("pw.sock"))
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string());
    let mut daemon = Spawned::start(cmd);
    let addr = daemon.tcp_addr();

    // READY comes with the first STATUS line, once the listeners serve.
    let (ready_at, ready) = wait_for(&got, "READY=1", Duration::from_secs(20));
    assert!(
        ready.contains("STATUS=0 allocations in 26200-26210; network "),
        "{ready:?}"
    );
    // A runtime of its own, dropped right after: its connection closes with it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = connect(&Target::Tcp(format!("http://{addr}")))
            .await
            .expect("the TCP listener answers once READY is sent");
        PortsServiceClient::new(channel)
            .allocate(AllocateRequest {
                service: "web".into(),
                ..Default::default()
            })
            .await
            .expect("allocate");
    });
    drop(rt);
    // STATUS is refreshed periodically and follows the allocation count.
    let (_, status) = wait_for(&got, "STATUS=1 allocation in", Duration::from_secs(15));
    assert!(status.contains("; network "), "{status:?}");

    // Let the watchdog run for a while after READY.
    let until = ready_at + Duration::from_secs(12);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let pings: Vec<Instant> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    assert!(pings.len() >= 4, "{} pings in 12 s", pings.len());
    let half = Duration::from_micros(WATCHDOG_USEC / 2);
    for gap in pings.windows(2).map(|w| w[1] - w[0]) {
        // At most one ping per WATCHDOG_USEC/2 (with the loop's jitter), and never a gap
        // systemd would take for a hung daemon.
        assert!(
            gap >= half.mul_f64(0.85),
            "ping gap {gap:?} shorter than {half:?}"
        );
        assert!(
            gap < Duration::from_micros(WATCHDOG_USEC),
            "ping gap {gap:?} reaches WATCHDOG_USEC"
        );
    }
    let span = *pings.last().unwrap() - pings[0];
    let mean = span / (pings.len() as u32 - 1);
    assert!(
        mean >= half.mul_f64(0.85) && mean <= half.mul_f64(1.6),
        "mean ping interval {mean:?}, expected about {half:?}"
    );

    let status = daemon.terminate();
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    wait_for(&got, "STOPPING=1", Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn without_watchdog_usec_no_pings_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let got = listen(UnixDatagram::bind(&notify).unwrap(), stop.clone());
    let mut cmd = through_shell(env!("CARGO_BIN_EXE_portwarden"), &[]);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--range", "26211-26215"])
        .args([
            "--netns-lock",
            &format!("@portwarden-test-{}-notify-2", std::process::id()),
        ])
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .arg("--unix-socket")
        .arg(dir.path().join("pw.sock"))
        .env("NOTIFY_SOCKET", &notify)
        .env_remove("WATCHDOG_USEC");
    let mut daemon = Spawned::start(cmd);
    wait_for(&got, "READY=1", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(daemon.terminate().success());
    wait_for(&got, "STOPPING=1", Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let all = got.lock().unwrap();
    assert!(
        all.iter().all(|(_, m)| !m.contains("WATCHDOG=1")),
        "{all:?}"
    );
}
