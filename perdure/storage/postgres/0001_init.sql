-- Perdure schema, PostgreSQL, version 1 (mirrors sql/sqlite/0001_init.sql).
--
-- `{p}` is the validated, possibly schema-qualified table prefix (`"tenant".perdure_`); `{n}`
-- is the bare prefix, for names that PostgreSQL places in the table's schema (indexes).
-- Timestamps are unix seconds (double precision) chosen by the engine, never the server's
-- clock: the engine may run on a virtual clock.
--
-- runs     one row per workflow run. A run is runnable when it is pending or waiting and its
--          wake_at has passed, or running with a lapsed lease (its worker died). `epoch` grows
--          on every claim; every write by a worker is fenced by (owner, epoch).
-- journal  one row per durable operation of a run, keyed by (run_id, seq).
-- workers  live workers. On PostgreSQL a worker also holds a session advisory lock for its
--          life, so its death is visible the instant its connection drops.
CREATE TABLE {p}runs (
    id               text PRIMARY KEY,
    workflow         text NOT NULL,
    version          text NOT NULL,
    wf_key           text NOT NULL,          -- workflow || chr(31) || version
    status           text NOT NULL,
    input            text NOT NULL,
    output           text,
    error            text,
    epoch            bigint NOT NULL DEFAULT 0,
    owner            text,
    lease_until      double precision,
    wake_at          double precision,
    parent_id        text,
    parent_seq       integer,
    deadline         double precision,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL
);

-- The claim and next-due queries: runnable-by-time runs in due order. Partial, so the
-- (usually vast) finished history costs nothing here, and runs parked only on an event
-- (wake_at NULL) stay out too. wf_key rides along so next_wake can filter without the heap.
CREATE INDEX {n}runs_due ON {p}runs (wake_at) INCLUDE (wf_key)
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL;
-- Runs whose worker may have died: lapsed leases, in expiry order.
CREATE INDEX {n}runs_leased ON {p}runs (lease_until) INCLUDE (wf_key)
    WHERE status = 'running';
-- Heartbeats, cancel flags and expiring a dead worker look runs up by owner.
CREATE INDEX {n}runs_owner ON {p}runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX {n}runs_workflow ON {p}runs (workflow, created_at);
CREATE INDEX {n}runs_parent ON {p}runs (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE {p}journal (
    run_id      text NOT NULL,
    seq         integer NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    output      text,
    error       text,
    due_at      double precision,
    started_at  double precision,
    finished_at double precision,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE {p}workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    pid_start    text,
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL
);
