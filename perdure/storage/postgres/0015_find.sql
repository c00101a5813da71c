-- Finding runs and keeping the tables small, PostgreSQL, version 15 (mirrors
-- sqlite/0015_find.sql).
--
-- runs.tags      the run's tags, a JSON object of text to text, read with the run; searches
--                use the tags table instead.
-- tags           one row per tag of a run. An equality search walks tags_lookup for one
--                (key, value) newest first, so a tag filter pages by keyset like the runs
--                list does. created_at is the run's (it never changes), copied here for that.
-- leases         named leases for what one worker at a time does (retention's pruning).
-- runs_created   the order of the runs list: newest first, the id breaking ties (cursors).
-- runs_finished  finished runs by status and age: what retention prunes, oldest first.
--                Partial: the rows of live runs, updated on every claim and heartbeat, are
--                not in it.
-- signals_run    every signal of a run, consumed or not, so pruning finds them by run.
ALTER TABLE {p}runs ADD COLUMN tags text;

CREATE TABLE {p}tags (
    run_id     text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX {n}tags_lookup ON {p}tags (key, value, created_at, run_id);

CREATE TABLE {p}leases (
    name       text PRIMARY KEY,
    owner      text NOT NULL,
    expires_at double precision NOT NULL
);

CREATE INDEX {n}runs_created ON {p}runs (created_at, id);
CREATE INDEX {n}runs_finished ON {p}runs (status, updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX {n}signals_run ON {p}signals (run_id);
