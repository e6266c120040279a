//! Durable state in SQLite (WAL). Every change is one transaction, committed before the caller
//! answers. The schema is versioned with `PRAGMA user_version`; migrations run at open. An
//! exclusive lock file keeps a second daemon off the same state (two allocators over one
//! database would double-allocate).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
#[cfg(unix)]
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::clock::{Deadline, Now};
use super::events_store::append_event;
use super::lease::{Allocation, Health};
use super::process::{boot_id, ProcessIdentity};
use super::schema::{META_CLOCK_BOOT, MIGRATIONS};
use crate::events::Event;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state {path} is locked by another portwarden daemon")]
    Locked { path: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state schema version {found} is newer than this binary understands ({known})")]
    NewerSchema { found: i64, known: i64 },
    #[error("corrupt row for port {port}: {what}")]
    Corrupt { port: i64, what: String },
    #[error("the state database is damaged: {0}")]
    Damaged(String),
    #[error("{0}; restore the state from a backup, or start with --accept-state-loss to continue with what is left")]
    Lost(String),
}

impl StoreError {
    /// Whether this error means the storage (disk full, I/O), not the data.
    pub fn is_storage(&self) -> bool {
        use rusqlite::ErrorCode;
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, ErrorCode::DiskFull | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen | ErrorCode::ReadOnly)
        )
    }
}

/// When a port was last given back, by whom, and until when it rests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHistory {
    pub port: u16,
    pub last_service: String,
    pub released_at_ms: i64,
    pub quarantine_until: Deadline,
}

/// Everything the allocator needs at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub allocations: Vec<Allocation>,
    pub history: Vec<PortHistory>,
    /// Which uid each bound service name belongs to.
    pub service_owners: HashMap<String, u32>,
    /// The ports projects remember, by (project, name).
    pub projects: Vec<super::projects::ProjectRecord>,
}

impl Snapshot {
    /// Each service's sticky port: the port it held most recently, whether it still holds it
    /// (latest allocation) or gave it back and nobody took it since (port history).
    pub fn sticky(&self) -> HashMap<String, u16> {
        let mut latest: HashMap<&str, (i64, u16)> = HashMap::new();
        let seen = self
            .history
            .iter()
            .map(|h| (h.last_service.as_str(), h.released_at_ms, h.port))
            .chain(
                self.allocations
                    .iter()
                    .map(|a| (a.service.as_str(), a.allocated_at_ms, a.port)),
            );
        for (service, at, port) in seen {
            let e = latest.entry(service).or_insert((at, port));
            if at >= e.0 {
                *e = (at, port);
            }
        }
        latest
            .into_iter()
            .map(|(s, (_, p))| (s.to_string(), p))
            .collect()
    }
}

pub struct Store {
    pub(super) conn: Connection,
    /// Which events concern each port and service (`history`), for the committed log.
    pub(super) event_index: super::event_index::EventIndex,
    // Held for the life of the store: the flock is released when the file closes.
    _lock: File,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                    path: dir.into(),
                    source,
                })?;
                #[cfg(unix)]
                let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            }
        }
        let lock = lock_file(path)?;
        let conn = Connection::open(path)?;
        // State holds lease tokens: owner-only (on Windows the user's profile directory is).
        #[cfg(unix)]
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a commit survives a crash of this process (kill -9); only a power loss
        // can drop the last transactions, and then every owning process is gone too.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        // Only this process ever opens the database (the lock file guarantees it): exclusive
        // locking skips the per-transaction file locks and the shared-memory WAL index.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        // Checkpoints fsync; at the default (1,000 pages) they land on every few hundred
        // allocations. 4,000 pages (16 MiB of WAL) makes them rare.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
        let mut store = Self {
            conn,
            event_index: Default::default(),
            _lock: lock,
        };
        store.migrate()?;
        store.index_events()?;
        Ok(store)
    }

    /// A tiny committed write, to learn whether writing works (after a failure).
    pub fn touch(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('storage_probe', datetime('now'))",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// SQLite's own consistency check of the file (pages, indexes): "ok" or what is wrong.
    pub fn quick_check(&self) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::Damaged(problems.join("; ")))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "state schema migrated");
        }
        Ok(())
    }

    /// Reads everything. Boot-clock deadlines stored in another boot mean nothing now: they are
    /// rebased on what the wall clock says is left (never more than their full length) and
    /// written back, in one transaction, before anything else runs.
    pub fn load(&mut self, now: Now) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        let stored_boot: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [META_CLOCK_BOOT],
                |r| r.get(0),
            )
            .optional()?;
        let same_boot = stored_boot.is_some() && stored_boot.as_deref() == boot_id();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT * FROM allocations ORDER BY port")?;
            let rows = stmt.query_map([], |r| Ok(row_to_allocation(r, same_boot, now)))?;
            for row in rows {
                snap.allocations.push(row??);
            }
            let mut stmt = self.conn.prepare(
                "SELECT port, last_service, released_at_ms, quarantine_until_ms,
                    quarantine_until_mono_ms FROM port_history",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            for row in rows {
                let (port, last_service, released_at_ms, until_wall, until_mono) = row?;
                let quarantine_until = if same_boot {
                    Deadline {
                        wall_ms: until_wall,
                        mono_ms: until_mono,
                    }
                } else {
                    Deadline::rebased(until_wall, until_wall - released_at_ms, now)
                };
                snap.history.push(PortHistory {
                    port: to_port(port)?,
                    last_service,
                    released_at_ms,
                    quarantine_until,
                });
            }
        }
        {
            let mut stmt = self
                .conn
                .prepare("SELECT service, uid FROM service_owners")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
            for row in rows {
                let (service, uid) = row?;
                snap.service_owners.insert(service, uid);
            }
        }
        snap.projects = super::projects::load(&self.conn)?;
        if !same_boot {
            self.rebase(&snap)?;
        }
        Ok(snap)
    }

    /// Writes the rebased boot-clock values and this boot's ID, atomically.
    fn rebase(&mut self, snap: &Snapshot) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for a in &snap.allocations {
            tx.prepare_cached("UPDATE allocations SET expires_mono_ms = ?2 WHERE port = ?1")?
                .execute(params![a.port, a.expires.map(|d| d.mono_ms)])?;
        }
        for h in &snap.history {
            tx.prepare_cached(
                "UPDATE port_history SET quarantine_until_mono_ms = ?2 WHERE port = ?1",
            )?
            .execute(params![h.port, h.quarantine_until.mono_ms])?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![META_CLOCK_BOOT, boot_id().unwrap_or_default()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a new allocation and its event (and binds its service name to `bind_name`'s uid,
    /// and writes the project record `project` makes or moves, when given), atomically.
    pub(super) fn insert(
        &mut self,
        a: &Allocation,
        event: &Event,
        bind_name: Option<u32>,
        project: Option<&super::projects::ProjectWrite>,
    ) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&a.labels).unwrap_or_else(|_| "{}".into());
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO allocations (port, service, purpose, started_by, pid, pid_start_time,
                owner_uid, lease_token, ttl_seconds, allocated_at_ms, renewed_at_ms, expires_at_ms,
                health, request_count, error_count, labels, network_health, pid_boot_id,
                expires_mono_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19)",
        )?
        .execute(params![
            a.port,
            a.service,
            a.purpose,
            a.started_by,
            a.owner.as_ref().map(|o| o.pid),
            a.owner.as_ref().map(|o| o.start_time as i64),
            a.owner_uid,
            a.lease_token,
            a.ttl_seconds.map(|t| t as i64),
            a.allocated_at_ms,
            a.renewed_at_ms,
            a.expires.map(|d| d.wall_ms),
            a.health.as_str(),
            a.request_count as i64,
            a.error_count as i64,
            labels,
            a.network_health,
            a.owner.as_ref().and_then(|o| o.boot_id.as_deref()),
            a.expires.map(|d| d.mono_ms),
        ])?;
        append_event(&tx, event)?;
        if let Some(uid) = bind_name {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO service_owners (service, uid) VALUES (?1, ?2)",
            )?
            .execute(params![a.service, uid])?;
        }
        if let Some(w) = project {
            super::projects::save(&tx, w)?;
        }
        tx.commit()?;
        self.event_index
            .add(event.sequence, event.port, &event.service);
        Ok(())
    }

    /// Removes an allocation, starts its port's quarantine and records the event, atomically.
    pub fn release(&mut self, h: &PortHistory, event: &Event) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("DELETE FROM allocations WHERE port = ?1")?
            .execute([h.port])?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO port_history (port, last_service, released_at_ms,
                quarantine_until_ms, quarantine_until_mono_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            h.port,
            h.last_service,
            h.released_at_ms,
            h.quarantine_until.wall_ms,
            h.quarantine_until.mono_ms
        ])?;
        append_event(&tx, event)?;
        tx.commit()?;
        self.event_index
            .add(event.sequence, event.port, &event.service);
        Ok(())
    }

    /// Writes the mutable part of an allocation (lease, counters, health) and its event,
    /// atomically.
    pub fn update(&mut self, a: &Allocation, event: &Event) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "UPDATE allocations SET ttl_seconds = ?2, renewed_at_ms = ?3, expires_at_ms = ?4,
                    health = ?5, request_count = ?6, error_count = ?7, expires_mono_ms = ?8
                 WHERE port = ?1",
        )?
        .execute(params![
            a.port,
            a.ttl_seconds.map(|t| t as i64),
            a.renewed_at_ms,
            a.expires.map(|d| d.wall_ms),
            a.health.as_str(),
            a.request_count as i64,
            a.error_count as i64,
            a.expires.map(|d| d.mono_ms),
        ])?;
        append_event(&tx, event)?;
        tx.commit()?;
        self.event_index
            .add(event.sequence, event.port, &event.service);
        Ok(())
    }
}

fn to_port(v: i64) -> Result<u16, StoreError> {
    u16::try_from(v).map_err(|_| StoreError::Corrupt {
        port: v,
        what: "port out of range".into(),
    })
}

fn row_to_allocation(r: &Row<'_>, same_boot: bool, now: Now) -> Result<Allocation, StoreError> {
    let port: i64 = r.get("port")?;
    let corrupt = |what: &str| StoreError::Corrupt {
        port,
        what: what.into(),
    };
    let health: String = r.get("health")?;
    let labels: String = r.get("labels")?;
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&labels).map_err(|_| corrupt("labels are not a JSON object"))?;
    let owner = match (
        r.get::<_, Option<i32>>("pid")?,
        r.get::<_, Option<i64>>("pid_start_time")?,
    ) {
        (Some(pid), Some(start)) => Some(ProcessIdentity {
            pid,
            start_time: start as u64,
            boot_id: r.get("pid_boot_id")?,
        }),
        (None, None) => None,
        _ => return Err(corrupt("pid without start time")),
    };
    let ttl_seconds = r.get::<_, Option<i64>>("ttl_seconds")?.map(|t| t as u64);
    let expires = match (
        r.get::<_, Option<i64>>("expires_at_ms")?,
        r.get::<_, Option<i64>>("expires_mono_ms")?,
    ) {
        (Some(wall_ms), Some(mono_ms)) if same_boot => Some(Deadline { wall_ms, mono_ms }),
        (Some(wall_ms), _) => {
            let longest = ttl_seconds.map_or(0, |t| (t as i64).saturating_mul(1000));
            Some(Deadline::rebased(wall_ms, longest, now))
        }
        (None, _) => None,
    };
    Ok(Allocation {
        port: to_port(port)?,
        service: r.get("service")?,
        purpose: r.get("purpose")?,
        started_by: r.get("started_by")?,
        owner,
        owner_uid: r.get("owner_uid")?,
        labels,
        lease_token: r.get("lease_token")?,
        ttl_seconds,
        allocated_at_ms: r.get("allocated_at_ms")?,
        renewed_at_ms: r.get("renewed_at_ms")?,
        expires,
        health: Health::parse(&health).ok_or_else(|| corrupt("unknown health"))?,
        request_count: r.get::<_, i64>("request_count")? as u64,
        error_count: r.get::<_, i64>("error_count")? as u64,
        network_health: r.get("network_health")?,
        observed: None,
    })
}

fn lock_file(db: &Path) -> Result<File, StoreError> {
    let mut path = db.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(&path).map_err(|source| StoreError::Lock {
        path: path.clone(),
        source,
    })?;
    // Windows: LockFileEx through std, exclusive and without waiting; released when the
    // process exits, however it exits, as flock is.
    #[cfg(windows)]
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::Locked { path: db.into() })
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(StoreError::Lock { path, source }),
    }
    #[cfg(unix)]
    {
        // SAFETY: flock on a valid, owned file descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                StoreError::Locked { path: db.into() }
            } else {
                StoreError::Lock { path, source: err }
            });
        }
    }
    Ok(file)
}
