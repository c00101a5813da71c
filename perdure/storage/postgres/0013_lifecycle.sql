-- Long-lived runs and changing code safely, PostgreSQL, version 13 (mirrors
-- sqlite/0013_lifecycle.sql).
--
-- runs.incarnation      how many times the run continued as new. A continue-as-new ends the
--                       current incarnation: its journal moves to journal_history under a
--                       `resumes` row of status 'continued' (with the arguments and version it
--                       ran with), and the run starts a fresh journal with new arguments in a
--                       new generation (so its steps get new idempotency keys).
-- runs.pause_requested  an operator paused the run: it parks with status 'paused' at its next
--                       durable await, and no worker claims it until it is resumed.
-- runs.forked_from/seq  the run is a fork of that run: its journal entries before that seq were
--                       copied from it; everything from there executes again.
-- resumes.input/version what an incarnation that continued as new ran with.
-- workers.serves        the workflow keys a live worker serves: a run whose key no live worker
--                       serves is stranded.
-- runs_unfinished       finds stranded runs without reading the finished history.
ALTER TABLE {p}runs ADD COLUMN incarnation integer NOT NULL DEFAULT 0;
ALTER TABLE {p}runs ADD COLUMN pause_requested boolean NOT NULL DEFAULT false;
ALTER TABLE {p}runs ADD COLUMN forked_from text;
ALTER TABLE {p}runs ADD COLUMN forked_seq integer;
ALTER TABLE {p}resumes ADD COLUMN input text;
ALTER TABLE {p}resumes ADD COLUMN version text;
ALTER TABLE {p}workers ADD COLUMN serves text[];
CREATE INDEX {n}runs_unfinished ON {p}runs (wf_key)
    WHERE status NOT IN ('completed', 'failed', 'cancelled');
