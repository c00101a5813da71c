-- Resume history, PostgreSQL, version 4 (mirrors sqlite/0004_history.sql).
--
-- runs.generation   how many times an operator resumed the run after it failed. Steps executed
--                   in generation N > 0 get the idempotency key "run:seq:gN" (see step_key()):
--                   the earlier executions under "run:seq" were compensated or failed.
-- resumes           one row per resume: the generation that ended, how (status, and the run's
--                   error or blocked reason) and when, kept for audit.
-- journal_history   the journal entries a resume superseded (a failed run's failed step, what
--                   followed it, its compensations and the steps they undid): out of the
--                   journal, so replay never reads them, but never deleted.
ALTER TABLE {p}runs ADD COLUMN generation integer NOT NULL DEFAULT 0;

CREATE TABLE {p}resumes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,
    generation  integer NOT NULL,
    status      text NOT NULL,
    error       text,
    ended_at    double precision NOT NULL,
    resumed_at  double precision NOT NULL
);
CREATE INDEX {n}resumes_run ON {p}resumes (run_id, id);

CREATE TABLE {p}journal_history (
    resume_id   bigint NOT NULL,
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
    PRIMARY KEY (resume_id, seq)
);
CREATE INDEX {n}journal_history_run ON {p}journal_history (run_id);
