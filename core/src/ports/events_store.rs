//! The event log in the state database: appended in the same transaction as the change it
//! describes, read back for resumes and history, compacted by count and age (etcd's revision +
//! compaction model: a position older than the compaction point is gone, and callers are told).

use rusqlite::{params, OptionalExtension, Transaction};

use super::store::{Store, StoreError};
use crate::events::{Event, EventFilter};

/// `meta` key: the highest sequence removed by compaction (0 when nothing was).
const META_COMPACTED_THROUGH: &str = "events_compacted_through";

/// Where the log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogBounds {
    /// The newest sequence ever written (0 before the first event).
    pub last: u64,
    /// Every sequence up to this one was compacted away (0 when none was).
    pub compacted_through: u64,
}

impl LogBounds {
    /// The oldest sequence a resume can still start after.
    pub fn oldest_retained(&self) -> u64 {
        self.compacted_through + 1
    }
}

pub(super) fn append_event(tx: &Transaction<'_>, e: &Event) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO events (sequence, at_ms, kind, port, service, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.sequence as i64,
        e.at_ms,
        e.kind().as_str(),
        e.port,
        e.service,
        e.to_json(),
    ])?;
    Ok(())
}

fn parse(sequence: i64, body: &str) -> Result<Event, StoreError> {
    Event::from_json(body).map_err(|e| StoreError::Corrupt {
        port: sequence,
        what: format!("event {sequence} is not readable: {e}"),
    })
}

impl Store {
    /// Records an event that changes no allocation (watchdog findings, passes).
    pub fn append(&mut self, e: &Event) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        append_event(&tx, e)?;
        tx.commit()?;
        self.event_index.add(e.sequence, e.port, &e.service);
        Ok(())
    }

    /// Builds the in-memory lookups of the log as stored (at open).
    pub(super) fn index_events(&mut self) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT sequence, port, service FROM events ORDER BY sequence")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let port: Option<i64> = r.get(1)?;
            self.event_index.add(
                r.get::<_, i64>(0)? as u64,
                port.and_then(|p| u16::try_from(p).ok()),
                &r.get::<_, String>(2)?,
            );
        }
        Ok(())
    }

    pub fn log_bounds(&self) -> Result<LogBounds, StoreError> {
        let compacted_through = self.compacted_through()?;
        let last: Option<i64> =
            self.conn
                .query_row("SELECT max(sequence) FROM events", [], |r| r.get(0))?;
        Ok(LogBounds {
            last: (last.unwrap_or(0) as u64).max(compacted_through),
            compacted_through,
        })
    }

    fn compacted_through(&self) -> Result<u64, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [META_COMPACTED_THROUGH],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Events after `after` up to `until` (inclusive) that pass `filter`, oldest first, at
    /// most `limit` of them scanned; returns them and the last sequence scanned.
    pub fn events_between(
        &self,
        after: u64,
        until: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sequence, body FROM events WHERE sequence > ?1 AND sequence <= ?2
             ORDER BY sequence LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![after as i64, until as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        let mut scanned = after;
        for row in rows {
            let (sequence, body) = row?;
            scanned = sequence as u64;
            let e = parse(sequence, &body)?;
            if filter.matches(&e) {
                out.push(e);
            }
        }
        // A short page means the range is exhausted.
        Ok((out, scanned))
    }

    /// Newest first: the events of `filter` (port and/or service, kinds) before `before`
    /// (exclusive; 0 means from the newest), at most `limit`.
    pub fn history(
        &self,
        filter: &EventFilter,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let before = if before == 0 { u64::MAX } else { before };
        // A port or a service: only its own events are read, by sequence.
        if let Some(seqs) = self
            .event_index
            .candidates(filter.port, filter.service.as_deref())
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT body FROM events WHERE sequence = ?1")?;
            let mut out = Vec::new();
            for &sequence in seqs.iter().rev().skip_while(|&&s| s >= before) {
                if out.len() >= limit {
                    break;
                }
                let body: Option<String> =
                    stmt.query_row([sequence as i64], |r| r.get(0)).optional()?;
                // Compacted since the lookup was made: gone, as it would be a moment later.
                let Some(body) = body else { continue };
                let e = parse(sequence as i64, &body)?;
                if filter.matches(&e) {
                    out.push(e);
                }
            }
            return Ok(out);
        }
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        let kinds_json = serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into());
        let mut stmt = self.conn.prepare_cached(
            "SELECT sequence, body FROM events
             WHERE sequence < ?1
               AND (?2 = '[]' OR kind IN (SELECT value FROM json_each(?2)))
             ORDER BY sequence DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![before.min(i64::MAX as u64) as i64, kinds_json, limit as i64],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?;
        rows.map(|row| {
            let (sequence, body) = row?;
            parse(sequence, &body)
        })
        .collect()
    }

    /// Drops events beyond the newest `keep` and those older than `older_than_ms` (wall time),
    /// always keeping the newest one. Returns the bounds after compaction.
    pub fn compact_events(
        &mut self,
        keep: u64,
        older_than_ms: i64,
    ) -> Result<LogBounds, StoreError> {
        let bounds = self.log_bounds()?;
        if bounds.last == 0 {
            return Ok(bounds);
        }
        let by_count = bounds.last.saturating_sub(keep.max(1));
        let by_age: Option<i64> = self.conn.query_row(
            "SELECT max(sequence) FROM events WHERE at_ms < ?1",
            [older_than_ms],
            |r| r.get(0),
        )?;
        let through = by_count
            .max(by_age.unwrap_or(0) as u64)
            .min(bounds.last - 1);
        if through <= bounds.compacted_through {
            return Ok(bounds);
        }
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM events WHERE sequence <= ?1", [through as i64])?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![META_COMPACTED_THROUGH, through.to_string()],
        )?;
        tx.commit()?;
        self.event_index.compact(through);
        Ok(LogBounds {
            last: bounds.last,
            compacted_through: through,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventDetail, EventKind};

    fn event(sequence: u64, port: Option<u16>, service: &str, detail: EventDetail) -> Event {
        Event {
            sequence,
            at_ms: sequence as i64,
            port,
            service: service.into(),
            message: format!("event {sequence}"),
            allocation: None,
            detail,
        }
    }

    fn seqs(events: Vec<Event>) -> Vec<u64> {
        events.iter().map(|e| e.sequence).collect()
    }

    #[test]
    fn history_by_port_and_service_survives_reopening_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let filter = |port: Option<u16>, service: Option<&str>, kinds: &[EventKind]| EventFilter {
            port,
            service: service.map(Into::into),
            kinds: kinds.to_vec(),
        };
        {
            let mut store = Store::open(&path).unwrap();
            store
                .append(&event(1, Some(8000), "web", EventDetail::Allocated))
                .unwrap();
            store
                .append(&event(2, Some(8001), "api", EventDetail::Allocated))
                .unwrap();
            store
                .append(&event(3, Some(8000), "web", EventDetail::Released))
                .unwrap();
            store
                .append(&event(4, Some(8000), "api", EventDetail::Allocated))
                .unwrap();
            store
                .append(&event(5, None, "", EventDetail::SquatterGone))
                .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let h =
            |s: &Store, f: &EventFilter, before, limit| seqs(s.history(f, before, limit).unwrap());
        assert_eq!(h(&store, &filter(Some(8000), None, &[]), 0, 10), [4, 3, 1]);
        assert_eq!(h(&store, &filter(None, Some("api"), &[]), 0, 10), [4, 2]);
        assert_eq!(
            h(&store, &filter(Some(8000), Some("web"), &[]), 0, 10),
            [3, 1]
        );
        assert_eq!(h(&store, &filter(Some(8000), None, &[]), 4, 1), [3]);
        let released = [EventKind::Released];
        assert_eq!(h(&store, &filter(Some(8000), None, &released), 0, 10), [3]);
        assert_eq!(h(&store, &filter(None, None, &[]), 0, 2), [5, 4]);
        assert_eq!(
            h(&store, &filter(Some(9999), None, &[]), 0, 10),
            Vec::<u64>::new()
        );
        store.compact_events(2, 0).unwrap();
        assert_eq!(h(&store, &filter(Some(8000), None, &[]), 0, 10), [4]);
        store
            .append(&event(6, Some(8000), "web", EventDetail::Allocated))
            .unwrap();
        assert_eq!(h(&store, &filter(None, Some("web"), &[]), 0, 10), [6]);
    }
}
