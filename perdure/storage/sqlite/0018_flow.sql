-- Flow control, SQLite, version 18: queues, limits, routing, delay and debounce.
--
-- runs.queue          the queue the run belongs to (NULL: none). Its limits are checked in the
--                     claim that takes it.
-- runs.partition_key  the key (a tenant, say) for per-key concurrency, fairness and debounce.
-- runs.priority       lower first, within its queue.
-- runs.vtime          its place in its queue's line: fair queueing across keys (each key's runs
--                     sit 1/weight apart; a newcomer key starts at the queue's current vclock),
--                     fixed when the run is created. The line is (queue, priority, vtime).
-- runs.requires       the routing selector as a JSON array of tokens ("gpu" = has the label,
--                     "region<US>eu" = has it with that value); only workers whose labels
--                     offer every token claim the run.
-- runs.debounce       1 while starts of the same (workflow, key) coalesce into this run.
--
-- A queued or routed run that is due enters its line: status 'pending' with wake_at NULL (the
-- plain claim only reads runs with a due time, so it never sees a line). Not yet due (a delay,
-- a debounce window, a timer), it is 'waiting' with a wake_at, like any parked run.
--
-- queues         each queue's limits (written by every engine that declares it: the database
--                holds the one definition every worker enforces) and its virtual clock.
-- queue_keys     per (queue, key): where that key's next run goes in the line (fair queueing).
-- limits         named semaphores and rate limits that steps take per attempt.
-- limit_holds    a semaphore slot held by an attempt (run, seq) at the run's epoch. It counts
--                only while that run is running at that epoch: a dead worker's slots return
--                when its runs are recovered (their epoch moves on), with no clean-up needed.
-- rate_grants    the sliding-window log of a rate ("queue:NAME" starts, "limit:NAME" attempts).
-- limit_waiters  runs parked on a limit, in arrival order: woken oldest first.
-- workers.labels the routing tokens a live worker offers (JSON array).
ALTER TABLE {p}runs ADD COLUMN queue TEXT;
ALTER TABLE {p}runs ADD COLUMN partition_key TEXT;
ALTER TABLE {p}runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {p}runs ADD COLUMN vtime REAL NOT NULL DEFAULT 0;
ALTER TABLE {p}runs ADD COLUMN requires TEXT;
ALTER TABLE {p}runs ADD COLUMN debounce INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {p}workers ADD COLUMN labels TEXT;

-- Due queued or routed runs, found to move them into their line.
CREATE INDEX {p}runs_flow_due ON {p}runs (wake_at)
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
      AND (queue IS NOT NULL OR requires IS NOT NULL);
-- The lines: runs waiting for a slot, in the order they are served.
CREATE INDEX {p}runs_line ON {p}runs (queue, priority, vtime)
    WHERE status = 'pending' AND (queue IS NOT NULL OR requires IS NOT NULL);
-- Running runs per queue and key: the concurrency a claim counts.
CREATE INDEX {p}runs_queue_running ON {p}runs (queue, partition_key)
    WHERE status = 'running' AND queue IS NOT NULL;
-- Parked runs per queue (for `perdure queues`).
CREATE INDEX {p}runs_queue_waiting ON {p}runs (queue)
    WHERE status = 'waiting' AND queue IS NOT NULL;
-- One debounced run per (workflow, key) still gathering starts.
CREATE UNIQUE INDEX {p}runs_debounce ON {p}runs (workflow, partition_key)
    WHERE debounce = 1 AND status = 'waiting' AND epoch = 0;

CREATE TABLE {p}queues (
    name        TEXT PRIMARY KEY,
    concurrency INTEGER,
    per_worker  INTEGER,
    per_key     INTEGER,
    rate_count  INTEGER,
    rate_per    REAL,
    weights     TEXT,
    vclock      REAL NOT NULL DEFAULT 0,
    defined_at  REAL NOT NULL
);

CREATE TABLE {p}queue_keys (
    queue  TEXT NOT NULL,
    key    TEXT NOT NULL,
    finish REAL NOT NULL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;

CREATE TABLE {p}limits (
    name        TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_count  INTEGER,
    rate_per    REAL,
    defined_at  REAL NOT NULL
);

CREATE TABLE {p}limit_holds (
    name     TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    taken_at REAL NOT NULL,
    PRIMARY KEY (name, run_id, seq)
) WITHOUT ROWID;
CREATE INDEX {p}limit_holds_run ON {p}limit_holds (run_id);

CREATE TABLE {p}rate_grants (
    id     INTEGER PRIMARY KEY,
    scope  TEXT NOT NULL,
    at     REAL NOT NULL,
    run_id TEXT
);
CREATE INDEX {p}rate_grants_window ON {p}rate_grants (scope, at);

CREATE TABLE {p}limit_waiters (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    run_id TEXT NOT NULL,
    since  REAL NOT NULL
);
CREATE UNIQUE INDEX {p}limit_waiters_run ON {p}limit_waiters (name, run_id);
CREATE INDEX {p}limit_waiters_order ON {p}limit_waiters (name, since, id);
