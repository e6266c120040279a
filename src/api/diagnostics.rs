//! The threads that run diagnostics for callers (CheckPorts, the REST health-check, the network
//! reports, event history): slow, blocking reads of /proc, netlink, DNS and SQLite. They get a
//! small pool of their own, so no number of them can queue the allocation path behind them on
//! the runtime's blocking pool (an allocation that must retake the network snapshot runs there),
//! and each caller may have only a few running or waiting: one local user asking thousands at
//! once gets RESOURCE_EXHAUSTED instead of every thread. Root and the daemon's own uid are
//! bounded by the total only.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use crate::ports::Caller;

/// Threads running diagnostics.
pub const DIAGNOSTIC_THREADS: usize = 2;
/// Their scheduling niceness: under load the CPU goes to allocations and answers first.
#[cfg(target_os = "linux")]
const DIAGNOSTIC_NICENESS: libc::c_int = 10;
/// Diagnostics one caller (uid; unidentified callers together) may have running or waiting.
pub const DIAGNOSTICS_PER_CALLER: usize = 4;
/// Diagnostics running or waiting, in all.
pub const MAX_DIAGNOSTICS: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Counts {
    total: usize,
    per_caller: HashMap<Option<u32>, usize>,
}

pub struct DiagnosticPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    counts: Arc<Mutex<Counts>>,
    own_uid: u32,
    refusal_log: crate::logging::OncePerSecond,
}

impl DiagnosticPool {
    /// Starts the threads.
    pub fn start() -> std::io::Result<Arc<Self>> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..DIAGNOSTIC_THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("portwarden-diag-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Arc::new(Self {
            jobs: Mutex::new(jobs),
            counts: Arc::default(),
            own_uid: crate::ports::daemon_uid(),
            refusal_log: crate::logging::OncePerSecond::new(),
        }))
    }

    /// Runs `work` on the pool for `caller`, or refuses it (RESOURCE_EXHAUSTED naming the
    /// limit, logged at most once a second) when the caller or the pool has too many.
    pub async fn run<T: Send + 'static>(
        &self,
        caller: &Caller,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Status> {
        let place = self.admit(caller.uid)?;
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that went away while its work waited needs no answer.
            if !done.is_closed() {
                let _ = done.send(work());
            }
            drop(place);
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job);
        if sent.is_err() {
            return Err(Status::unavailable("the diagnostics threads have stopped"));
        }
        answer
            .await
            .map_err(|_| Status::internal("a diagnostics task failed"))
    }

    fn admit(&self, uid: Option<u32>) -> Result<Place, Status> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_caller.get(&uid).copied().unwrap_or(0);
        let privileged = crate::ports::is_operator(uid, self.own_uid);
        let refused = if c.total >= MAX_DIAGNOSTICS {
            Some((
                "diagnostics",
                format!(
                    "{} diagnostics are running or waiting, the daemon's limit ({MAX_DIAGNOSTICS})",
                    c.total
                ),
            ))
        } else if !privileged && mine >= DIAGNOSTICS_PER_CALLER {
            let who = uid.map_or_else(
                || "callers the daemon cannot identify".to_string(),
                |u| format!("uid {u}"),
            );
            Some((
                "diagnostics_per_caller",
                format!(
                    "{who} has {mine} diagnostics running or waiting, the most one caller may \
                     ({DIAGNOSTICS_PER_CALLER})"
                ),
            ))
        } else {
            None
        };
        if let Some((subject, why)) = refused {
            drop(c);
            self.log_refusal(&why);
            let message = format!("{why}; wait for them to finish and ask again");
            return Err(Status::with_error_details(
                tonic::Code::ResourceExhausted,
                message,
                ErrorDetails::with_quota_failure_violation(subject, why),
            ));
        }
        c.total += 1;
        *c.per_caller.entry(uid).or_default() += 1;
        Ok(Place {
            counts: self.counts.clone(),
            uid,
        })
    }

    fn log_refusal(&self, why: &str) {
        if !self.refusal_log.ready() {
            return;
        }
        tracing::warn!("diagnostics refused: {why}");
    }
}

/// One admitted piece of work's place, given back when it has run (or was dropped unrun).
struct Place {
    counts: Arc<Mutex<Counts>>,
    uid: Option<u32>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_caller.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                c.per_caller.remove(&self.uid);
            }
        }
    }
}

/// This thread yields the CPU to the others (Linux niceness is per thread).
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority have no preconditions; a failure leaves the priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, DIAGNOSTIC_NICENESS);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_caller_gets_a_few_places_and_root_is_bounded_by_the_total_only() {
        let pool = DiagnosticPool::start().unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let user = Caller {
            uid: Some(1000),
            pid: None,
        };
        let mut running = Vec::new();
        for _ in 0..DIAGNOSTICS_PER_CALLER {
            let (pool, hold) = (pool.clone(), hold.clone());
            running.push(tokio::spawn(async move {
                pool.run(&user, move || {
                    let _ = hold.lock().unwrap().recv();
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = pool.run(&user, || ()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("uid 1000"),
            "{}",
            refused.message()
        );
        let root = Caller {
            uid: Some(0),
            pid: None,
        };
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(&root, || 42).await })
        };
        for _ in 0..DIAGNOSTICS_PER_CALLER {
            release.send(()).unwrap();
        }
        assert_eq!(queued.await.unwrap().unwrap(), 42);
        for r in running {
            r.await.unwrap().unwrap();
        }
        assert_eq!(pool.run(&user, || 7).await.unwrap(), 7, "places come back");
    }
}
