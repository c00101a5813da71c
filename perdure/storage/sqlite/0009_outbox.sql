-- The transactional outbox, SQLite, version 9.
--
-- outbox         events emitted by workflows (perdure.emit), not yet delivered. A row is
--                inserted in the same transaction as the emitting run's journal entry, so an
--                event exists exactly when its emit is journaled. `position` is the emit
--                order: a key's events are delivered in position order, one at a time. Only
--                the first undelivered event of its key (its head), and every event without a
--                key, has a `ready_at`: when it may be tried next. The others wait with NULL
--                and the head's removal promotes the next, so finding work never scans a
--                backlog. `id` (run id and seq) is stable, handed to receivers to deduplicate.
--                A failed attempt bumps `attempts` and moves `ready_at`; a delivered event is
--                deleted.
-- outbox_keys    one row per key with undelivered events: how many. An emit increments it and
--                its event is the head when it made it 1; the row is also the lock that
--                serializes a key's emits with the removal of its head (on PostgreSQL).
-- outbox_dead    events that failed every attempt (the dead letters), with their last error,
--                kept until an operator replays them (back into the outbox, at their old
--                position) or purges them.
-- outbox_leader  one row: the publisher's lease. Only the worker holding it delivers; `term`
--                grows with every change of holder and fences the holder's writes, so a
--                deposed publisher can no longer delete or bury anything.
CREATE TABLE {p}outbox (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    run_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    key        TEXT,
    payload    TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    ready_at   REAL,
    last_error TEXT
);
-- The work: events that may be tried, oldest first.
CREATE INDEX {p}outbox_ready ON {p}outbox (ready_at, position) WHERE ready_at IS NOT NULL;
-- The next event of a key, when its head is removed.
CREATE INDEX {p}outbox_key ON {p}outbox (key, position) WHERE key IS NOT NULL;

CREATE TABLE {p}outbox_keys (
    key     TEXT PRIMARY KEY,
    pending INTEGER NOT NULL
);

CREATE TABLE {p}outbox_dead (
    position   INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    run_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    key        TEXT,
    payload    TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    failed_at  REAL NOT NULL
);

CREATE TABLE {p}outbox_leader (
    name        TEXT PRIMARY KEY,
    owner       TEXT,
    term        INTEGER NOT NULL,
    lease_until REAL NOT NULL
);
INSERT INTO {p}outbox_leader (name, owner, term, lease_until) VALUES ('publisher', NULL, 0, 0);
