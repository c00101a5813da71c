-- Flow control, PostgreSQL, version 18 (mirrors sqlite/0018_flow.sql, which explains each
-- column and table): queues, limits, routing, delay and debounce.
--
-- runs_due, the plain claim's index, now leaves queued and routed runs out: they are claimed
-- from their line (runs_line) under their limits, never by due time alone.
ALTER TABLE {p}runs ADD COLUMN queue text;
ALTER TABLE {p}runs ADD COLUMN partition_key text;
ALTER TABLE {p}runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE {p}runs ADD COLUMN vtime double precision NOT NULL DEFAULT 0;
ALTER TABLE {p}runs ADD COLUMN requires text[];
ALTER TABLE {p}runs ADD COLUMN debounce boolean NOT NULL DEFAULT false;
ALTER TABLE {p}workers ADD COLUMN labels text[];

DROP INDEX {p}runs_due;
CREATE INDEX {n}runs_due ON {p}runs (wake_at) INCLUDE (wf_key)
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
      AND queue IS NULL AND requires IS NULL;
CREATE INDEX {n}runs_flow_due ON {p}runs (wake_at) INCLUDE (wf_key, queue)
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
      AND (queue IS NOT NULL OR requires IS NOT NULL);
CREATE INDEX {n}runs_line ON {p}runs (queue, priority, vtime)
    WHERE status = 'pending' AND (queue IS NOT NULL OR requires IS NOT NULL);
CREATE INDEX {n}runs_queue_running ON {p}runs (queue, partition_key)
    WHERE status = 'running' AND queue IS NOT NULL;
-- Parked runs per queue (for `perdure queues`).
CREATE INDEX {n}runs_queue_waiting ON {p}runs (queue)
    WHERE status = 'waiting' AND queue IS NOT NULL;
CREATE UNIQUE INDEX {n}runs_debounce ON {p}runs (workflow, partition_key)
    WHERE debounce AND status = 'waiting' AND epoch = 0;

CREATE TABLE {p}queues (
    name        text PRIMARY KEY,
    concurrency integer,
    per_worker  integer,
    per_key     integer,
    rate_count  integer,
    rate_per    double precision,
    weights     text,
    vclock      double precision NOT NULL DEFAULT 0,
    defined_at  double precision NOT NULL
);

CREATE TABLE {p}queue_keys (
    queue  text NOT NULL,
    key    text NOT NULL,
    finish double precision NOT NULL,
    PRIMARY KEY (queue, key)
);

CREATE TABLE {p}limits (
    name        text PRIMARY KEY,
    concurrency integer,
    rate_count  integer,
    rate_per    double precision,
    defined_at  double precision NOT NULL
);

CREATE TABLE {p}limit_holds (
    name     text NOT NULL,
    run_id   text NOT NULL,
    seq      integer NOT NULL,
    epoch    bigint NOT NULL,
    taken_at double precision NOT NULL,
    PRIMARY KEY (name, run_id, seq)
);
CREATE INDEX {n}limit_holds_run ON {p}limit_holds (run_id);

CREATE TABLE {p}rate_grants (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope  text NOT NULL,
    at     double precision NOT NULL,
    run_id text
);
CREATE INDEX {n}rate_grants_window ON {p}rate_grants (scope, at);

CREATE TABLE {p}limit_waiters (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name   text NOT NULL,
    run_id text NOT NULL,
    since  double precision NOT NULL
);
CREATE UNIQUE INDEX {n}limit_waiters_run ON {p}limit_waiters (name, run_id);
CREATE INDEX {n}limit_waiters_order ON {p}limit_waiters (name, since, id);
