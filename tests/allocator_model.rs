//! The allocator against a model: random sequences of allocate (kept until released, by a
//! lease, by a process, or both), release (with the right and a wrong token), renew, time
//! passing, owners exiting or becoming unreadable, outside programs taking ports, the reaper's
//! sweep and a restart, run on the real allocator and real SQLite in a temp dir, on a host the
//! test plays (its clock, its processes, its probe bind: `portwarden::ports::Host`). After every
//! step the allocator holds exactly the ports the model says are held; no port is handed to a
//! second live owner, nor while an outside program listens on it; only an expired lease or an
//! exited owner loses its port (an unreadable one never); a resting port goes to no other
//! service before its quarantine ends; a restart loses nothing acknowledged; and the event log
//! has one event per acknowledged change, numbered without a gap, also across restarts.
//!
//! `PROPTEST_CASES` sets the number of sequences (default 1,000, each up to 60 steps).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use portwarden::network::PortFinding;
use portwarden::ports::{
    event_filter, AllocateRequest, Allocator, AllocatorConfig, Caller, Clock, DeathCause, Host,
    Liveness, Now, PortsError, ProcessIdentity, RangeSet, RenewRequest, SystemClock,
};

/// Eight ports: small enough that sequences run out of them often (no port is bound: the
/// test's host answers the probe).
const RANGE: &str = "48200-48207";
const QUARANTINE_MS: i64 = 1_000;

/// The real clocks at the start, then moved only by the test.
struct TestClock {
    wall_ms: AtomicI64,
    mono_ms: AtomicI64,
}

impl TestClock {
    fn new() -> Self {
        let real = SystemClock.now();
        Self {
            wall_ms: AtomicI64::new(real.wall_ms),
            mono_ms: AtomicI64::new(real.mono_ms),
        }
    }

    fn advance(&self, ms: i64) {
        self.wall_ms.fetch_add(ms, Ordering::SeqCst);
        self.mono_ms.fetch_add(ms, Ordering::SeqCst);
    }

    fn mono(&self) -> i64 {
        self.mono_ms.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> Now {
        Now {
            wall_ms: self.wall_ms.load(Ordering::SeqCst),
            mono_ms: self.mono_ms.load(Ordering::SeqCst),
        }
    }
}

/// How the test's processes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proc {
    Running,
    /// Running, but the host cannot say so now (an I/O error reading it).
    Unreadable,
    Exited,
}

/// Processes that can own ports: pids 50000.. .
const PROCS: u8 = 3;

fn pid(n: u8) -> i32 {
    50_000 + i32::from(n % PROCS)
}

/// The host as the test plays it.
struct TestHost {
    clock: TestClock,
    procs: Mutex<BTreeMap<i32, Proc>>,
    /// Ports an outside program listens on.
    outsiders: Mutex<BTreeSet<u16>>,
}

impl TestHost {
    fn new() -> Self {
        Self {
            clock: TestClock::new(),
            procs: Mutex::new((0..PROCS).map(|n| (pid(n), Proc::Running)).collect()),
            outsiders: Mutex::default(),
        }
    }

    fn proc(&self, pid: i32) -> Proc {
        self.procs.lock().unwrap()[&pid]
    }

    fn set_proc(&self, pid: i32, to: Proc) {
        let mut procs = self.procs.lock().unwrap();
        let now = procs.get_mut(&pid).unwrap();
        // An exited process stays exited.
        if *now != Proc::Exited {
            *now = to;
        }
    }
}

impl Host for TestHost {
    fn now(&self) -> Now {
        self.clock.now()
    }

    fn probe(&self, port: u16) -> PortFinding {
        if self.outsiders.lock().unwrap().contains(&port) {
            PortFinding::InUse("an outside program listens".into())
        } else {
            PortFinding::Bindable
        }
    }

    fn liveness(&self, owner: &ProcessIdentity) -> Liveness {
        match self.procs.lock().unwrap().get(&owner.pid) {
            Some(Proc::Running) => Liveness::Alive,
            Some(Proc::Unreadable) => Liveness::Unknown("cannot read it now".into()),
            Some(Proc::Exited) | None => Liveness::Dead(DeathCause::Exited),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// `caller`: 0 an unidentified (remote) caller, 1 and 2 two local users.
    /// `owner`: the process (of [`PROCS`]) that owns it, if any.
    Allocate {
        service: u8,
        ttl_seconds: Option<u64>,
        caller: u8,
        owner: Option<u8>,
    },
    /// Releases the `which`-th held port (modulo how many), with its token or a wrong one.
    Release {
        which: usize,
        right_token: bool,
    },
    Renew {
        which: usize,
        ttl_seconds: Option<u64>,
    },
    Advance {
        ms: i64,
    },
    /// A process changes: exits, becomes unreadable, or readable again.
    Process {
        proc: u8,
        to: u8,
    },
    /// An outside program starts or stops listening on the `offset`-th port of the range.
    Outsider {
        offset: u16,
        listens: bool,
    },
    Sweep,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, prop::option::of(1u64..4), 0u8..3, prop::option::of(0..PROCS)).prop_map(|(service, ttl_seconds, caller, owner)| Op::Allocate { service, ttl_seconds, caller, owner }),
        2 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(which, right_token)| Op::Release { which, right_token }),
        1 => (any::<usize>(), prop::option::of(1u64..4)).prop_map(|(which, ttl_seconds)| Op::Renew { which, ttl_seconds }),
        2 => (0i64..2_500).prop_map(|ms| Op::Advance { ms }),
        1 => (0..PROCS, 0u8..3).prop_map(|(proc, to)| Op::Process { proc, to }),
        1 => (0u16..8, any::<bool>()).prop_map(|(offset, listens)| Op::Outsider { offset, listens }),
        1 => Just(Op::Sweep),
        1 => Just(Op::Restart),
    ]
}

/// What the model knows of one held port.
#[derive(Debug, Clone)]
struct Held {
    service: String,
    caller: Caller,
    token: String,
    /// Boot-clock deadline of a lease.
    expires_mono_ms: Option<i64>,
    /// The owning process.
    owner: Option<i32>,
}

/// Acknowledged changes, by event kind.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    allocated: usize,
    released: usize,
    renewed: usize,
    reclaimed: usize,
}

/// Ports one caller may hold: the default quota, half the range.
const PER_CALLER: usize = 4;

/// The callers: an unidentified one and two local users (neither is root, so releasing and
/// renewing always take the token; a wrong token is refused whoever gives it).
fn caller(n: u8) -> Caller {
    Caller {
        uid: [None, Some(1000), Some(1001)][usize::from(n % 3)],
        pid: None,
    }
}

struct Run {
    dir: tempfile::TempDir,
    host: Arc<TestHost>,
    alloc: Option<Allocator>,
    held: BTreeMap<u16, Held>,
    /// Released or reclaimed ports: by which service, and the end of their quarantine (boot
    /// clock). Only that service may have the port back before then.
    resting: BTreeMap<u16, (String, i64)>,
    changes: Changes,
}

impl Run {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Self {
            dir,
            host: Arc::new(TestHost::new()),
            alloc: None,
            held: BTreeMap::new(),
            resting: BTreeMap::new(),
            changes: Changes::default(),
        };
        run.open();
        run
    }

    fn open(&mut self) {
        let cfg = AllocatorConfig {
            ranges: RangeSet::new(vec![RANGE.parse().unwrap()]).unwrap(),
            test_pool: None,
            quarantine: Duration::from_millis(QUARANTINE_MS as u64),
            state_path: self.dir.path().join("state.db"),
            quotas: Default::default(),
            accept_state_loss: false,
        };
        let (alloc, repair) = Allocator::open_with_host(cfg, self.host.clone()).unwrap();
        // The repair pass at start-up reclaims what expired while "down": the same rule.
        for r in &repair.reclaimed {
            self.reclaimed(r.allocation.port);
        }
        self.alloc = Some(alloc);
    }

    fn alloc(&self) -> &Allocator {
        self.alloc.as_ref().unwrap()
    }

    fn nth(&self, which: usize) -> Option<u16> {
        (!self.held.is_empty()).then(|| *self.held.keys().nth(which % self.held.len()).unwrap())
    }

    /// Whether the allocator may take `h` back now: its lease ran out or its owner exited
    /// (an owner that cannot be read is kept).
    fn dead(&self, h: &Held) -> bool {
        h.expires_mono_ms
            .is_some_and(|e| self.host.clock.mono() >= e)
            || h.owner.is_some_and(|p| self.host.proc(p) == Proc::Exited)
    }

    /// A reclaim the allocator reported: only a dead owner's port may be taken back.
    fn reclaimed(&mut self, port: u16) {
        let held = self
            .held
            .remove(&port)
            .unwrap_or_else(|| panic!("port {port} reclaimed but not held"));
        assert!(
            self.dead(&held),
            "port {port} ({held:?}) reclaimed while its owner lives (now {})",
            self.host.clock.mono()
        );
        self.resting
            .insert(port, (held.service, self.host.clock.mono() + QUARANTINE_MS));
        self.changes.reclaimed += 1;
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Allocate {
                service,
                ttl_seconds,
                caller: who,
                owner,
            } => {
                let who = caller(*who);
                let owner = owner.map(pid);
                let req = AllocateRequest {
                    // Each user names its own services: a name one user holds is not another's.
                    service: format!("u{}-svc{service}", who.uid.map_or(0, |u| u - 999)),
                    ttl_seconds: *ttl_seconds,
                    pid: owner,
                    // As a transport that checked the claim hands it over.
                    owner_identity: owner.map(|pid| ProcessIdentity {
                        pid,
                        start_time: 1,
                        boot_id: None,
                    }),
                    ..Default::default()
                };
                let owner_exited = owner.is_some_and(|p| self.host.proc(p) == Proc::Exited);
                let holds = self.held.values().filter(|h| h.caller == who).count();
                match self.alloc().allocate(req, &who) {
                    Ok(granted) => {
                        let a = granted.allocation;
                        assert!((48200..=48207).contains(&a.port));
                        assert!(
                            !self.host.outsiders.lock().unwrap().contains(&a.port),
                            "port {} handed out while an outside program listens on it",
                            a.port
                        );
                        // A port still held in the model may only be a dead owner's, taken back
                        // by this allocation (then it rests like any reclaimed port).
                        if self.held.contains_key(&a.port) {
                            self.reclaimed(a.port);
                        }
                        if let Some((rested_by, until)) = self.resting.get(&a.port) {
                            assert!(
                                self.host.clock.mono() >= *until || *rested_by == a.service,
                                "port {} handed to {} {} ms before the quarantine after {rested_by} ends",
                                a.port,
                                a.service,
                                until - self.host.clock.mono()
                            );
                        }
                        self.held.insert(
                            a.port,
                            Held {
                                service: a.service,
                                caller: who,
                                token: a.lease_token,
                                expires_mono_ms: ttl_seconds
                                    .map(|t| self.host.clock.mono() + t as i64 * 1000),
                                owner,
                            },
                        );
                        self.changes.allocated += 1;
                    }
                    Err(PortsError::Exhausted { .. }) => {}
                    Err(PortsError::QuotaExceeded { .. }) if holds >= PER_CALLER => {}
                    // Allocating to a process that is gone may be refused; it may also be
                    // granted, and then the next sweep takes it back.
                    Err(PortsError::Invalid(_)) if owner_exited => {}
                    Err(e) => panic!("allocate for {who:?}, holding {holds}: {e}"),
                }
            }
            Op::Release { which, right_token } => {
                let Some(port) = self.nth(*which) else { return };
                let token = if *right_token {
                    self.held[&port].token.clone()
                } else {
                    "not-the-token".to_string()
                };
                let holder = self.held[&port].caller;
                let got = self.alloc().release(u32::from(port), Some(&token), &holder);
                match (right_token, got) {
                    (true, Ok(r)) => {
                        assert_eq!(r.allocation.port, port);
                        let held = self.held.remove(&port).unwrap();
                        self.resting
                            .insert(port, (held.service, self.host.clock.mono() + QUARANTINE_MS));
                        self.changes.released += 1;
                    }
                    (false, Err(_)) => {}
                    (true, Err(e)) => panic!("release of held port {port} with its token: {e}"),
                    (false, Ok(_)) => panic!("port {port} released with a wrong token"),
                }
            }
            Op::Renew { which, ttl_seconds } => {
                let Some(port) = self.nth(*which) else { return };
                let held = self.held[&port].clone();
                let req = RenewRequest {
                    port: u32::from(port),
                    lease_token: Some(held.token.clone()),
                    ttl_seconds: *ttl_seconds,
                    ..Default::default()
                };
                match self.alloc().renew(req, &held.caller) {
                    Ok(a) => {
                        match a.ttl_seconds {
                            Some(ttl) => {
                                self.held.get_mut(&port).unwrap().expires_mono_ms =
                                    Some(self.host.clock.mono() + ttl as i64 * 1000)
                            }
                            None => assert_eq!(held.expires_mono_ms, None, "a lease keeps its TTL"),
                        }
                        self.changes.renewed += 1;
                    }
                    // A lease past its deadline is reclaimed by the renewal that finds it so.
                    Err(PortsError::LeaseDead { .. }) => self.reclaimed(port),
                    // A TTL for an allocation without one is refused unless it asks to become
                    // a lease.
                    Err(PortsError::Invalid(_))
                        if held.expires_mono_ms.is_none() && ttl_seconds.is_some() => {}
                    Err(e) => panic!("renew of held port {port}: {e}"),
                }
            }
            Op::Advance { ms } => self.host.clock.advance(*ms),
            Op::Process { proc, to } => {
                let to = [Proc::Running, Proc::Unreadable, Proc::Exited][usize::from(*to % 3)];
                self.host.set_proc(pid(*proc), to);
            }
            Op::Outsider { offset, listens } => {
                let port = 48200 + offset % 8;
                let mut outsiders = self.host.outsiders.lock().unwrap();
                if *listens {
                    outsiders.insert(port);
                } else {
                    outsiders.remove(&port);
                }
            }
            Op::Sweep => {
                let reclaimed = self.alloc().sweep().unwrap();
                for r in reclaimed {
                    self.reclaimed(r.allocation.port);
                }
                // Every dead owner's port is gone after a sweep.
                for (port, h) in &self.held {
                    assert!(
                        !self.dead(h),
                        "port {port} ({h:?}) kept after a sweep at {}",
                        self.host.clock.mono()
                    );
                }
            }
            Op::Restart => {
                drop(self.alloc.take());
                self.open();
            }
        }
        self.check();
    }

    /// The allocator holds exactly what the model holds (less dead owners' ports it took back).
    fn check(&mut self) {
        let listed: BTreeMap<u16, String> = self
            .alloc()
            .list(None)
            .into_iter()
            .map(|a| (a.port, a.service))
            .collect();
        // An allocation that finds no free port first takes back dead owners' ports: a held
        // port the allocator no longer lists must be one of those.
        let gone: Vec<u16> = self
            .held
            .keys()
            .filter(|p| !listed.contains_key(p))
            .copied()
            .collect();
        for port in gone {
            self.reclaimed(port);
        }
        let modeled: BTreeMap<u16, String> = self
            .held
            .iter()
            .map(|(p, h)| (*p, h.service.clone()))
            .collect();
        assert_eq!(listed, modeled, "held ports");
    }

    /// One logged event per acknowledged change, sequences 1, 2, 3, ... with no gap.
    fn check_log(&self) {
        let filter = event_filter(None, None, Vec::new()).unwrap();
        let (events, _) = self
            .alloc()
            .events_between(0, i64::MAX as u64, 100_000, &filter)
            .unwrap();
        let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
        let expected: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(sequences, expected, "sequences without a gap");
        let mut logged = Changes::default();
        for e in &events {
            match e.kind().as_str() {
                "allocated" => logged.allocated += 1,
                "released" => logged.released += 1,
                "renewed" => logged.renewed += 1,
                "reclaimed" => logged.reclaimed += 1,
                other => panic!("unexpected event {other}"),
            }
        }
        assert_eq!(logged, self.changes, "one event per acknowledged change");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_allocator_agrees_with_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut run = Run::new();
        for op in &ops {
            run.step(op);
        }
        run.check_log();
    }
}
