-- Schedules, SQLite, version 20.
--
-- A schedule is a row, not a timer in a process: any worker fires it when next_due has passed,
-- in one write that moves the row on (compare-and-set on revision) and creates the slot's run,
-- whose id is derived from the schedule id and the slot's time ("id@2030-01-01T10:00:00Z"):
-- two workers, or one restarted mid-firing, can never start a slot twice.
--
-- workflow, version, input   the run each slot starts (input: the encoded arguments)
-- cron, timezone             when (a cron expression in an IANA time zone)
-- overlap                    skip | buffer_one | allow | cancel_other: a slot that comes due
--                            while the previous firing's run (last_run_id) is still going
-- catchup                    seconds: after downtime, missed slots younger than this fire
--                            (oldest first), older ones are skipped and counted
-- next_due                   the next slot not yet fired (NULL: the expression has no more)
-- buffered_at                buffer_one: the slot waiting for last_run_id to finish
-- last_slot                  the slot of the latest firing
-- fired, skipped_missed,     counters: slots fired, skipped as too old after downtime,
-- skipped_overlap            skipped because the previous run was still going
-- revision                   bumped by every write, so that a firing computed from a stale
--                            read (another worker fired, an operator paused) writes nothing
CREATE TABLE {p}schedules (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    version         TEXT NOT NULL,
    input           TEXT NOT NULL,
    cron            TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    overlap         TEXT NOT NULL,
    catchup         REAL NOT NULL,
    paused          INTEGER NOT NULL DEFAULT 0,
    next_due        REAL,
    buffered_at     REAL,
    last_run_id     TEXT,
    last_slot       REAL,
    fired           INTEGER NOT NULL DEFAULT 0,
    skipped_missed  INTEGER NOT NULL DEFAULT 0,
    skipped_overlap INTEGER NOT NULL DEFAULT 0,
    revision        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
-- Workers sleep until the earliest next_due and find the due schedules through this index.
CREATE INDEX {p}schedules_due ON {p}schedules (next_due)
    WHERE paused = 0 AND next_due IS NOT NULL;
CREATE INDEX {p}schedules_buffered ON {p}schedules (buffered_at)
    WHERE paused = 0 AND buffered_at IS NOT NULL;
