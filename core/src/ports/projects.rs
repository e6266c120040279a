//! Project ports: a project (a directory, named by its absolute path) remembers one port per
//! name (`web`, `api`), so every run of that project gets the same ports back, across daemon
//! restarts, and two worktrees of one repository do not trade ports.
//!
//! A record is sticky, not reserved: it never stops another service from taking the port while
//! the project does not hold it; the project then gets a new port and the record moves. What it
//! does reserve, softly, is the order of a fresh pick: ports remembered by a record are passed over
//! while a port nobody remembers is free ([`ProjectPorts::unremembered_first`]).
//!
//! Records are written in the same transaction as the allocation that makes or moves them, and
//! belong to the uid that first recorded ports for the project (only it, or root, may use or
//! forget the project). Each record carries the service name its allocations get:
//! `<name>.<directory name>`, made unique among the records (`web.app-2` for a second `app`).

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{params, Connection, Transaction};

use super::error::PortsError;
use super::fields::MAX_SERVICE_LEN;
use super::lease::{Allocation, Caller};

/// Records one uid may keep; past it, the one used longest ago is forgotten (projects that were
/// deleted leave theirs behind, and nothing else would ever drop them).
pub const MAX_RECORDS_PER_UID: usize = 1024;

/// What a record is keyed by: the project's directory and the name of the port in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectKey {
    pub project: String,
    pub name: String,
}

/// One remembered port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub key: ProjectKey,
    /// The service name of the project's allocations of this name.
    pub service: String,
    pub port: u16,
    /// The project's owner: who may use and forget it.
    pub owner_uid: u32,
    /// When an allocation last made or moved it (wall clock, ms).
    pub updated_at_ms: i64,
}

/// A record to store with an allocation, and the one it pushes out (the owner's oldest, when
/// the owner already keeps [`MAX_RECORDS_PER_UID`]).
#[derive(Debug, Clone)]
pub(super) struct ProjectWrite {
    pub record: ProjectRecord,
    pub evict: Option<ProjectKey>,
}

/// Whether a remembered port is the project's now.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectPortState {
    /// The project's own allocation holds it.
    Held(Box<Allocation>),
    /// Nobody holds it: the project gets it back next time, if nothing else listens there.
    Free,
    /// Another service holds it: the project gets another port next time.
    Taken { service: String },
}

/// A record with what holds its port now (ListProjectPorts).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPort {
    pub record: ProjectRecord,
    pub state: ProjectPortState,
}

/// What ForgetProject did.
#[derive(Debug, Clone, Default)]
pub struct Forgotten {
    pub records: Vec<ProjectRecord>,
    /// The project's allocations it released.
    pub released: Vec<Allocation>,
}

/// The records in memory, with the indexes a pick and a name need.
#[derive(Debug, Default)]
pub(super) struct ProjectPorts {
    /// Ordered by project, then name: one project's records are one range.
    records: BTreeMap<ProjectKey, ProjectRecord>,
    /// How many records remember each port.
    remembered: HashMap<u16, usize>,
    services: HashSet<String>,
    per_uid: HashMap<u32, usize>,
}

impl ProjectPorts {
    pub fn from_stored(records: Vec<ProjectRecord>) -> Self {
        let mut p = Self::default();
        for r in records {
            p.add(r);
        }
        p
    }

    fn add(&mut self, r: ProjectRecord) {
        if let Some(old) = self.records.remove(&r.key) {
            self.drop_indexes(&old);
        }
        *self.remembered.entry(r.port).or_default() += 1;
        self.services.insert(r.service.clone());
        *self.per_uid.entry(r.owner_uid).or_default() += 1;
        self.records.insert(r.key.clone(), r);
    }

    fn drop_indexes(&mut self, r: &ProjectRecord) {
        if let Some(n) = self.remembered.get_mut(&r.port) {
            *n -= 1;
            if *n == 0 {
                self.remembered.remove(&r.port);
            }
        }
        self.services.remove(&r.service);
        if let Some(n) = self.per_uid.get_mut(&r.owner_uid) {
            *n = n.saturating_sub(1);
        }
    }

    pub fn get(&self, key: &ProjectKey) -> Option<&ProjectRecord> {
        self.records.get(key)
    }

    /// The project's records, by name.
    pub fn of<'a>(&'a self, project: &'a str) -> impl Iterator<Item = &'a ProjectRecord> + 'a {
        let from = ProjectKey {
            project: project.to_string(),
            name: String::new(),
        };
        self.records
            .range(from..)
            .take_while(move |(k, _)| k.project == project)
            .map(|(_, r)| r)
    }

    /// The uid the project belongs to: `caller`'s for a new project. Another uid is refused
    /// (root may use any project); a caller the connection does not identify cannot own one.
    pub fn owner_for(&self, project: &str, caller: &Caller) -> Result<u32, PortsError> {
        let uid = caller.uid.ok_or(PortsError::CallerUnknown {
            what: "a project port",
        })?;
        match self.of(project).next().map(|r| r.owner_uid) {
            None => Ok(uid),
            Some(owner) if owner == uid || uid == 0 => Ok(owner),
            Some(owner) => Err(PortsError::ProjectNotYours {
                project: project.to_string(),
                owner_uid: owner,
            }),
        }
    }

    /// Whether a pick for `asking` should pass over `port`: a record other than its own
    /// remembers it.
    pub fn reserved_against(&self, port: u16, asking: Option<&ProjectKey>) -> bool {
        let n = self.remembered.get(&port).copied().unwrap_or(0);
        let own = asking
            .and_then(|k| self.records.get(k))
            .is_some_and(|r| r.port == port);
        n > usize::from(own)
    }

    /// `candidates` with the ports other records remember moved to the end (in their order):
    /// a soft reservation that keeps worktrees from trading ports while unremembered ones are
    /// free, and gives way when none are.
    pub fn unremembered_first<'a, I>(
        &'a self,
        candidates: I,
        asking: Option<&'a ProjectKey>,
    ) -> impl Iterator<Item = u16> + 'a
    where
        I: Iterator<Item = u16> + Clone + 'a,
    {
        let none_remembered = self.remembered.is_empty();
        let later = candidates.clone();
        candidates
            .filter(move |p| none_remembered || !self.reserved_against(*p, asking))
            .chain(later.filter(move |p| !none_remembered && self.reserved_against(*p, asking)))
    }

    /// The service name for a new record of `key`: `<name>.<directory name>`, cut to the
    /// service-name rule and made unique among the records.
    pub fn service_for(&self, key: &ProjectKey) -> String {
        if let Some(r) = self.records.get(key) {
            return r.service.clone();
        }
        let base = service_name(&key.name, &key.project);
        if !self.services.contains(&base) {
            return base;
        }
        // Bounded: at most one more candidate than there are records.
        (2..=self.records.len() + 2)
            .map(|n| {
                let suffix = format!("-{n}");
                let keep = base.len().min(MAX_SERVICE_LEN - suffix.len());
                format!("{}{suffix}", &base[..keep])
            })
            .find(|s| !self.services.contains(s))
            .unwrap_or(base)
    }

    /// What to store when `port` is allocated for `key`.
    pub fn write_for(
        &self,
        key: &ProjectKey,
        service: &str,
        port: u16,
        owner_uid: u32,
        now_ms: i64,
    ) -> ProjectWrite {
        let evict = (!self.records.contains_key(key)
            && self.per_uid.get(&owner_uid).copied().unwrap_or(0) >= MAX_RECORDS_PER_UID)
            .then(|| {
                self.records
                    .values()
                    .filter(|r| r.owner_uid == owner_uid)
                    .min_by_key(|r| r.updated_at_ms)
                    .map(|r| r.key.clone())
            })
            .flatten();
        ProjectWrite {
            record: ProjectRecord {
                key: key.clone(),
                service: service.to_string(),
                port,
                owner_uid,
                updated_at_ms: now_ms,
            },
            evict,
        }
    }

    /// After the write committed.
    pub fn apply(&mut self, w: ProjectWrite) {
        if let Some(old) = w.evict.and_then(|k| self.records.remove(&k)) {
            self.drop_indexes(&old);
        }
        self.add(w.record);
    }

    pub fn remove_project(&mut self, project: &str) -> Vec<ProjectRecord> {
        let keys: Vec<ProjectKey> = self.of(project).map(|r| r.key.clone()).collect();
        let mut gone = Vec::new();
        for k in keys {
            if let Some(r) = self.records.remove(&k) {
                self.drop_indexes(&r);
                gone.push(r);
            }
        }
        gone
    }
}

/// Whether `a` is the allocation of record `r`: its service name, made by the project's owner
/// (or root, which may allocate in any project).
pub(super) fn is_recorded(a: &Allocation, r: &ProjectRecord) -> bool {
    a.service == r.service && (a.owner_uid == Some(r.owner_uid) || a.owner_uid == Some(0))
}

/// `<name>.<directory name>`, characters outside [A-Za-z0-9._-] as '_', cut to 64 characters
/// (the directory name first). The root directory adds nothing.
pub fn service_name(name: &str, project: &str) -> String {
    let dir = super::fields::service_chars(
        &std::path::Path::new(project)
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
    );
    let room = MAX_SERVICE_LEN.saturating_sub(name.len() + 1);
    if dir.is_empty() || room == 0 {
        return name.chars().take(MAX_SERVICE_LEN).collect();
    }
    format!("{name}.{}", &dir[..dir.len().min(room)])
}

/// Every stored record.
pub(super) fn load(conn: &Connection) -> rusqlite::Result<Vec<ProjectRecord>> {
    let mut stmt = conn.prepare(
        "SELECT project, name, service, port, owner_uid, updated_at_ms FROM project_ports",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ProjectRecord {
            key: ProjectKey {
                project: r.get(0)?,
                name: r.get(1)?,
            },
            service: r.get(2)?,
            port: r.get(3)?,
            owner_uid: r.get(4)?,
            updated_at_ms: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Writes `w` inside the allocation's transaction.
pub(super) fn save(tx: &Transaction<'_>, w: &ProjectWrite) -> rusqlite::Result<()> {
    if let Some(k) = &w.evict {
        tx.prepare_cached("DELETE FROM project_ports WHERE project = ?1 AND name = ?2")?
            .execute(params![k.project, k.name])?;
    }
    let r = &w.record;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO project_ports (project, name, service, port, owner_uid,
            updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.key.project,
        r.key.name,
        r.service,
        r.port,
        r.owner_uid,
        r.updated_at_ms
    ])?;
    Ok(())
}

/// Deletes every record of `project`, in one transaction.
pub(super) fn delete_project(conn: &mut Connection, project: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM project_ports WHERE project = ?1", [project])?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(project: &str, name: &str, port: u16, uid: u32, at: i64) -> ProjectRecord {
        ProjectRecord {
            key: ProjectKey {
                project: project.into(),
                name: name.into(),
            },
            service: service_name(name, project),
            port,
            owner_uid: uid,
            updated_at_ms: at,
        }
    }

    #[test]
    fn service_names_read_well_and_keep_the_rule() {
        assert_eq!(service_name("web", "/src/my app"), "web.my_app");
        assert_eq!(service_name("web", "/"), "web");
        let long = service_name("api", &format!("/{}", "x".repeat(100)));
        assert_eq!(long.len(), MAX_SERVICE_LEN);
        assert!(crate::ports::valid_service(&long).is_ok());
        assert_eq!(service_name(&"n".repeat(64), "/a"), "n".repeat(64));
    }

    #[test]
    fn a_second_directory_of_the_same_name_gets_a_name_of_its_own() {
        let p = ProjectPorts::from_stored(vec![record("/a/app", "web", 8000, 0, 1)]);
        let other = ProjectKey {
            project: "/b/app".into(),
            name: "web".into(),
        };
        assert_eq!(p.service_for(&other), "web.app-2");
    }

    #[test]
    fn other_projects_ports_come_last_and_a_projects_own_port_does_not() {
        let p = ProjectPorts::from_stored(vec![
            record("/a", "web", 8000, 0, 1),
            record("/b", "web", 8002, 0, 1),
        ]);
        let a = ProjectKey {
            project: "/a".into(),
            name: "web".into(),
        };
        let order: Vec<u16> = p
            .unremembered_first([8000, 8001, 8002, 8003].into_iter(), Some(&a))
            .collect();
        assert_eq!(order, [8000, 8001, 8003, 8002]);
        let anyone: Vec<u16> = p
            .unremembered_first([8000, 8001, 8002].into_iter(), None)
            .collect();
        assert_eq!(anyone, [8001, 8000, 8002]);
        let empty = ProjectPorts::default();
        let same: Vec<u16> = empty.unremembered_first(8000..8003, None).collect();
        assert_eq!(same, [8000, 8001, 8002]);
    }

    #[test]
    fn a_project_belongs_to_its_first_user_and_root() {
        let p = ProjectPorts::from_stored(vec![record("/home/a/app", "web", 8000, 1000, 1)]);
        let as_uid = |uid| Caller {
            uid: Some(uid),
            pid: None,
        };
        assert_eq!(p.owner_for("/home/a/app", &as_uid(1000)).unwrap(), 1000);
        assert_eq!(p.owner_for("/home/a/app", &as_uid(0)).unwrap(), 1000);
        assert!(matches!(
            p.owner_for("/home/a/app", &as_uid(1001)),
            Err(PortsError::ProjectNotYours {
                owner_uid: 1000,
                ..
            })
        ));
        assert_eq!(p.owner_for("/home/b/app", &as_uid(1001)).unwrap(), 1001);
        assert!(matches!(
            p.owner_for("/home/b/app", &Caller::REMOTE),
            Err(PortsError::CallerUnknown { .. })
        ));
    }

    #[test]
    fn past_the_limit_the_oldest_record_of_that_user_goes() {
        let stored = (0..MAX_RECORDS_PER_UID)
            .map(|i| record(&format!("/p{i}"), "web", 8000, 7, 10 + i as i64))
            .chain([record("/other", "web", 8001, 8, 0)])
            .collect();
        let mut p = ProjectPorts::from_stored(stored);
        let key = ProjectKey {
            project: "/new".into(),
            name: "web".into(),
        };
        let w = p.write_for(&key, "web.new", 8005, 7, 99);
        assert_eq!(w.evict.as_ref().map(|k| k.project.as_str()), Some("/p0"));
        p.apply(w);
        assert!(p.of("/p0").next().is_none());
        assert!(
            p.of("/other").next().is_some(),
            "another user's records stay"
        );
        assert_eq!(p.of("/new").next().map(|r| r.port), Some(8005));
    }
}
