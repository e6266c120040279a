//! A live owner never loses its port: liveness comes from the kernel, and an error reading it
//! (the daemon out of descriptors, say) is "unknown", never "dead".

mod common;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{allocate, bin, eventually, list, ChildDaemon};
use portwarden_client::proto::*;

/// Descriptors the daemon may hold in the descriptor-pressure test: enough to start, far fewer
/// than the connections the test opens.
const DAEMON_NOFILE: libc::rlim_t = 128;

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("600")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sleep")
}

struct Reaped(Vec<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_owners_keep_their_ports_while_the_daemon_is_out_of_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    // SAFETY: setrlimit is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: DAEMON_NOFILE,
                rlim_max: DAEMON_NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Connection limits above the descriptor limit: this is about running out of descriptors.
    let daemon = ChildDaemon::spawn_cmd(
        cmd,
        dir.path(),
        "29000-29020",
        &[
            "--quarantine",
            "0s",
            "--max-connections",
            "10000",
            "--max-connections-per-peer",
            "10000",
        ],
    );
    // One channel opened before the flood: it needs no new descriptor on the daemon's side.
    let mut c = daemon.tcp().await;
    let owners = Reaped((0..5).map(|_| sleeper()).collect());
    for (i, owner) in owners.0.iter().enumerate() {
        allocate(
            &mut c,
            AllocateRequest {
                service: format!("owner{i}"),
                pid: Some(owner.id() as i32),
                ..Default::default()
            },
        )
        .await;
    }

    // More connections than the daemon has descriptors: it runs out (EMFILE) and stays out for
    // several reaper ticks.
    let mut flood = Vec::new();
    for _ in 0..2 * DAEMON_NOFILE {
        match TcpStream::connect_timeout(&daemon.addr, Duration::from_millis(200)) {
            Ok(s) => flood.push(s),
            Err(_) => break, // the accept queue is full too
        }
    }
    let fds =
        || std::fs::read_dir(format!("/proc/{}/fd", daemon.child.id())).map_or(0, |d| d.count());
    assert!(
        eventually(Duration::from_secs(5), || async {
            fds() as u64 + 2 >= DAEMON_NOFILE
        })
        .await,
        "the daemon ran out of descriptors ({} open, limit {DAEMON_NOFILE})",
        fds()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = list(&mut c).await;
    drop(flood);
    assert_eq!(
        held.len(),
        5,
        "every live owner keeps its port while /proc cannot be read: {held:?}"
    );

    // Liveness still works once descriptors are back: the owners die, their ports come back.
    drop(owners);
    assert!(
        eventually(Duration::from_secs(10), || {
            let mut c = c.clone();
            async move { list(&mut c).await.is_empty() }
        })
        .await,
        "dead owners are reclaimed once the daemon can read /proc again"
    );
}

fn invalid_fields(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn threads_init_and_kernel_threads_cannot_own_a_port() {
    let d = common::TestDaemon::start("29030-29035", Duration::ZERO).await;
    let mut c = d.tcp().await;
    // A thread of this test process: it ends while the process lives on, so it must not own.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = done_rx.recv();
    });
    let tid = rx.recv().unwrap();
    let kthreadd = 2;
    for (pid, rule) in [
        (tid, "is a thread of process"),
        (1, "never exits"),
        (kthreadd, "never exits"),
    ] {
        let err = c
            .allocate(AllocateRequest {
                service: "greedy".into(),
                pid: Some(pid),
                ..Default::default()
            })
            .await
            .unwrap_err();
        let fields = invalid_fields(&err);
        assert!(
            fields.iter().any(|(f, r)| f == "pid" && r.contains(rule)),
            "pid {pid}: {fields:?}"
        );
    }
    done_tx.send(()).unwrap();
    thread.join().unwrap();
    assert!(list(&mut c).await.is_empty(), "nothing was allocated");
    d.stop().await;
}

#[tokio::test]
async fn an_owner_from_before_a_reboot_is_dead_even_if_its_pid_and_start_time_match() {
    let dir = tempfile::tempdir().unwrap();
    let owner = Reaped(vec![sleeper()]);
    let pid = owner.0[0].id() as i32;
    {
        let mut d = ChildDaemon::spawn(dir.path(), "29040-29045", &["--quarantine", "0s"]);
        let mut c = d.tcp().await;
        allocate(
            &mut c,
            AllocateRequest {
                service: "pre-reboot".into(),
                pid: Some(pid),
                ..Default::default()
            },
        )
        .await;
        assert!(d.terminate().success());
    }
    // The state as another boot would have left it: same PID and start time, other boot ID.
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE allocations SET pid_boot_id = '00000000-0000-0000-0000-000000000000'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let d = ChildDaemon::spawn(dir.path(), "29040-29045", &["--quarantine", "0s"]);
    let mut c = d.tcp().await;
    assert!(
        list(&mut c).await.is_empty(),
        "the repair pass reclaims an owner from another boot"
    );
    d.wait_for_log("rebooted").unwrap();
}

mod clock_jumps {
    //! Leases and quarantine measure time on the boot clock: setting the wall clock forward a
    //! day neither expires a lease nor ends a quarantine.

    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use portwarden::ports::{
        AllocateRequest, Allocator, AllocatorConfig, Caller, Clock, Now, PortsError, RangeSet,
        SystemClock,
    };

    /// The real clocks, with the wall clock moved by `wall_offset_ms`.
    struct SetWallClock {
        wall_offset_ms: AtomicI64,
    }

    impl Clock for SetWallClock {
        fn now(&self) -> Now {
            let real = SystemClock.now();
            Now {
                wall_ms: real.wall_ms + self.wall_offset_ms.load(Ordering::SeqCst),
                mono_ms: real.mono_ms,
            }
        }
    }

    #[test]
    fn a_wall_clock_jump_expires_no_lease_and_ends_no_quarantine() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(SetWallClock {
            wall_offset_ms: AtomicI64::new(0),
        });
        let cfg = AllocatorConfig {
            ranges: RangeSet::new(vec!["29050-29051".parse().unwrap()]).unwrap(),
            test_pool: None,
            quarantine: Duration::from_secs(60),
            state_path: dir.path().join("state.db"),
            quotas: Default::default(),
            accept_state_loss: false,
        };
        let (alloc, _) = Allocator::open_with_clock(cfg, clock.clone()).unwrap();
        let caller = Caller {
            uid: Some(0),
            pid: None,
        };
        let req = |service: &str| AllocateRequest {
            service: service.into(),
            ttl_seconds: Some(60),
            ..Default::default()
        };
        let leased = alloc.allocate(req("lease"), &caller).unwrap().allocation;
        let released = alloc.allocate(req("gone"), &caller).unwrap().allocation;
        alloc
            .release(
                u32::from(released.port),
                Some(&released.lease_token),
                &caller,
            )
            .unwrap();

        clock.wall_offset_ms.store(86_400_000, Ordering::SeqCst);
        assert!(alloc.sweep().unwrap().is_empty(), "no lease expired");
        assert_eq!(alloc.list(None).len(), 1);
        assert_eq!(alloc.get(u32::from(leased.port)).unwrap().service, "lease");
        // The released port is still resting: another service cannot have it.
        let err = alloc.allocate(req("next"), &caller).unwrap_err();
        assert!(
            matches!(err, PortsError::Exhausted { quarantined: 1, .. }),
            "{err}"
        );
    }
}
