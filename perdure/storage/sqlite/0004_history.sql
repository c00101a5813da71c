-- Resume history, SQLite, version 4.
--
-- runs.generation   how many times an operator resumed the run after it failed. Steps executed
--                   in generation N > 0 get the idempotency key "run:seq:gN" (see step_key()):
--                   the earlier executions under "run:seq" were compensated or failed.
-- resumes           one row per resume: the generation that ended, how (status, and the run's
--                   error or blocked reason) and when, kept for audit.
-- journal_history   the journal entries a resume superseded (a failed run's failed step, what
--                   followed it, its compensations and the steps they undid): out of the
--                   journal, so replay never reads them, but never deleted.
ALTER TABLE {p}runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE {p}resumes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    ended_at    REAL NOT NULL,
    resumed_at  REAL NOT NULL
);
CREATE INDEX {p}resumes_run ON {p}resumes (run_id, id);

CREATE TABLE {p}journal_history (
    resume_id   INTEGER NOT NULL,
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
    PRIMARY KEY (resume_id, seq)
) WITHOUT ROWID;
CREATE INDEX {p}journal_history_run ON {p}journal_history (run_id);
