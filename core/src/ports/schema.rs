//! The state file's SQLite schema, as the migrations that build it, and the `meta` keys.

/// Each entry moves the schema from version i to i+1.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: allocations, and per-port history (quarantine, LRU order and sticky ports derive from it).
    "CREATE TABLE allocations (
        port            INTEGER PRIMARY KEY,
        service         TEXT    NOT NULL,
        purpose         TEXT    NOT NULL,
        started_by      TEXT    NOT NULL,
        pid             INTEGER,
        pid_start_time  INTEGER,
        owner_uid       INTEGER,
        lease_token     TEXT    NOT NULL,
        ttl_seconds     INTEGER,
        allocated_at_ms INTEGER NOT NULL,
        renewed_at_ms   INTEGER,
        expires_at_ms   INTEGER,
        health          TEXT    NOT NULL,
        request_count   INTEGER NOT NULL DEFAULT 0,
        error_count     INTEGER NOT NULL DEFAULT 0,
        labels          TEXT    NOT NULL DEFAULT '{}',
        network_health  TEXT    NOT NULL DEFAULT ''
    );
    CREATE TABLE port_history (
        port                INTEGER PRIMARY KEY,
        last_service        TEXT    NOT NULL,
        released_at_ms      INTEGER NOT NULL,
        quarantine_until_ms INTEGER NOT NULL
    );",
    // 2: the boot an owner started in (a PID from before a reboot is never taken for a live
    // owner), deadlines on the boot clock (immune to wall-clock jumps), and `meta` for facts
    // about the state itself (the boot those boot-clock values belong to).
    "ALTER TABLE allocations ADD COLUMN pid_boot_id TEXT;
    ALTER TABLE allocations ADD COLUMN expires_mono_ms INTEGER;
    ALTER TABLE port_history ADD COLUMN quarantine_until_mono_ms INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: the event log. `body` is the event's JSON; the other columns serve filters and
    // compaction.
    "CREATE TABLE events (
        sequence INTEGER PRIMARY KEY,
        at_ms    INTEGER NOT NULL,
        kind     TEXT    NOT NULL,
        port     INTEGER,
        service  TEXT    NOT NULL,
        body     TEXT    NOT NULL
    );
    CREATE INDEX events_by_port ON events (port, sequence) WHERE port IS NOT NULL;
    CREATE INDEX events_by_service ON events (service, sequence) WHERE service != '';",
    // 4: service names belong to the uid that first used them (names made up for portpicker
    // requests are never bound).
    "CREATE TABLE service_owners (service TEXT PRIMARY KEY, uid INTEGER NOT NULL);
    INSERT OR IGNORE INTO service_owners (service, uid)
        SELECT service, owner_uid FROM allocations
        WHERE owner_uid IS NOT NULL AND service NOT LIKE 'portpicker.%'
        ORDER BY allocated_at_ms;",
    // 5: the event log's lookups by port and service moved to memory (`event_index.rs`): each
    // of these wrote one more page per commit.
    "DROP INDEX IF EXISTS events_by_port;
    DROP INDEX IF EXISTS events_by_service;",
    // 6: the ports projects remember (`projects.rs`): (project directory, name) -> port, with
    // the service name its allocations get and the uid the project belongs to.
    "CREATE TABLE project_ports (
        project       TEXT    NOT NULL,
        name          TEXT    NOT NULL,
        service       TEXT    NOT NULL,
        port          INTEGER NOT NULL,
        owner_uid     INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (project, name)
    );",
];

/// `meta` key: the boot ID the stored boot-clock values (`*_mono_ms`) were taken in.
pub(super) const META_CLOCK_BOOT: &str = "clock_boot_id";
