-- Perdure schema, SQLite, version 1.
--
-- runs     one row per workflow run. A run is runnable when it is pending or waiting and its
--          wake_at has passed, or running with a lapsed lease (its worker died). `epoch` grows on
--          every claim; every write by a worker is fenced by the epoch it claimed with, so a
--          worker that lost its run can never write over the new owner's state.
-- journal  one row per durable operation of a run, keyed by (run_id, seq). The row is the
--          recorded outcome that replay returns; a retrying step keeps its attempt count here.
-- workers  live workers: host and pid let a worker on the same host see at once that another
--          died (its pid is gone) instead of waiting for its leases to lapse.
CREATE TABLE {p}runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    version          TEXT NOT NULL,
    wf_key           TEXT NOT NULL,          -- workflow || char(31) || version: what a worker can run
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,                   -- JSON {type, message, traceback} or the blocked reason
    epoch            INTEGER NOT NULL DEFAULT 0,
    owner            TEXT,
    lease_until      REAL,
    wake_at          REAL,
    parent_id        TEXT,
    parent_seq       INTEGER,
    deadline         REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);
CREATE INDEX {p}runs_runnable ON {p}runs (status, wake_at);
CREATE INDEX {p}runs_owner ON {p}runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX {p}runs_workflow ON {p}runs (workflow, created_at);
CREATE INDEX {p}runs_parent ON {p}runs (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE {p}journal (
    run_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    output      TEXT,
    error       TEXT,
    due_at      REAL,
    started_at  REAL,
    finished_at REAL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE {p}workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    pid_start    TEXT,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
