-- The dashboard's overview, SQLite, version 21.
--
-- runs_in_flight  the unfinished runs by status, newest first: a status's page of the runs
--                 list (the overview's blocked runs, the runs list filtered by "waiting") is
--                 a range of it, however few such runs hide in however long a history, and
--                 the counts by status read it alone. Partial: a finished run leaves it, so
--                 it stays as small as the work in flight.
CREATE INDEX {p}runs_in_flight ON {p}runs (status, created_at, id, workflow, version)
    WHERE status NOT IN ('completed', 'failed', 'cancelled');
