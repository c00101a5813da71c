-- Finding runs and keeping the tables small, SQLite, version 15.
--
-- runs.tags      the run's tags, a JSON object of text to text, read with the run; searches
--                use the tags table instead.
-- tags           one row per tag of a run. An equality search walks tags_lookup for one
--                (key, value) newest first, so a tag filter pages by keyset like the runs
--                list does. created_at is the run's (it never changes), copied here for that.
-- leases         named leases for what one worker at a time does (retention's pruning).
-- runs_created   the order of the runs list: newest first, the id breaking ties (cursors).
-- runs_finished  finished runs by status and age: what retention prunes, oldest first.
-- signals_run    every signal of a run, consumed or not, so pruning finds them by run.
ALTER TABLE {p}runs ADD COLUMN tags TEXT;

CREATE TABLE {p}tags (
    run_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX {p}tags_lookup ON {p}tags (key, value, created_at, run_id);

CREATE TABLE {p}leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);

CREATE INDEX {p}runs_created ON {p}runs (created_at, id);
CREATE INDEX {p}runs_finished ON {p}runs (status, updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX {p}signals_run ON {p}signals (run_id);
