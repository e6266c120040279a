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
        let before = if before == 0 { i64::MAX } else { before as i64 };
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        let kinds_json = serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into());
        let mut stmt = self.conn.prepare_cached(
            "SELECT sequence, body FROM events
             WHERE sequence < ?1
               AND (?2 IS NULL OR port = ?2)
               AND (?3 IS NULL OR service = ?3)
               AND (?4 = '[]' OR kind IN (SELECT value FROM json_each(?4)))
             ORDER BY sequence DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                before,
                filter.port,
                filter.service,
                kinds_json,
                limit as i64
            ],
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
        Ok(LogBounds {
            last: bounds.last,
            compacted_through: through,
        })
    }
}
