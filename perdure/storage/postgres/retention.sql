-- Keeping the tables small: pruning finished runs, and the lease that lets one worker at a
-- time do it (see retention.py; mirrors sqlite/retention.sql).

-- name: prunable
-- Finished runs past their status's cutoff (a NULL cutoff keeps every run of that status),
-- oldest first per status, whose parent is finished or gone: a parent that may still run can
-- be waiting to read its child's row (no parent: p.id = NULL matches nothing). Each branch
-- walks the partial index runs_finished in age order, which even a generic plan prefers.
SELECT id FROM (
    SELECT * FROM (
        SELECT r.id FROM {p}runs r
        WHERE r.status = 'completed' AND r.updated_at < :completed_before::float8
          AND NOT EXISTS (SELECT 1 FROM {p}runs p
                          WHERE p.id = r.parent_id
                            AND p.status NOT IN ('completed', 'failed', 'cancelled'))
        ORDER BY r.updated_at
        LIMIT :limit::bigint) AS completed
    UNION ALL
    SELECT * FROM (
        SELECT r.id FROM {p}runs r
        WHERE r.status = 'failed' AND r.updated_at < :failed_before::float8
          AND NOT EXISTS (SELECT 1 FROM {p}runs p
                          WHERE p.id = r.parent_id
                            AND p.status NOT IN ('completed', 'failed', 'cancelled'))
        ORDER BY r.updated_at
        LIMIT :limit::bigint) AS failed
    UNION ALL
    SELECT * FROM (
        SELECT r.id FROM {p}runs r
        WHERE r.status = 'cancelled' AND r.updated_at < :cancelled_before::float8
          AND NOT EXISTS (SELECT 1 FROM {p}runs p
                          WHERE p.id = r.parent_id
                            AND p.status NOT IN ('completed', 'failed', 'cancelled'))
        ORDER BY r.updated_at
        LIMIT :limit::bigint) AS cancelled
) AS due
LIMIT :limit::bigint

-- name: prune_runs
-- The runs themselves, re-checked on the newest row version (a resume that committed since
-- `prunable` read them keeps its run); then every prune_child_* query deletes their rows in
-- the per-run tables, in the same transaction.
DELETE FROM {p}runs
WHERE id = ANY(:ids::text[]) AND status IN ('completed', 'failed', 'cancelled')
RETURNING id

-- Every per-run table, one query each, named prune_child_<table>: the adapter runs them all
-- (a table added later joins by adding its query here). Each must find a run's rows by an
-- index that starts with run_id.

-- name: prune_child_journal
DELETE FROM {p}journal WHERE run_id = ANY(:ids::text[])

-- name: prune_child_journal_history
DELETE FROM {p}journal_history WHERE run_id = ANY(:ids::text[])

-- name: prune_child_resumes
DELETE FROM {p}resumes WHERE run_id = ANY(:ids::text[])

-- name: prune_child_signals
DELETE FROM {p}signals WHERE run_id = ANY(:ids::text[])

-- name: prune_child_tags
DELETE FROM {p}tags WHERE run_id = ANY(:ids::text[])

-- name: take_lease
-- Take the named lease if it is free, lapsed or already ours; a row comes back if we hold it.
INSERT INTO {p}leases AS l (name, owner, expires_at)
VALUES (:name, :owner, :until::float8)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE l.owner = excluded.owner OR l.expires_at < :now::float8
RETURNING owner

-- name: release_lease
DELETE FROM {p}leases WHERE name = :name AND owner = :owner

-- name: prune_child_events
DELETE FROM {p}events WHERE run_id = ANY(:ids::text[])

-- name: prune_child_stream_items
DELETE FROM {p}stream_items WHERE run_id = ANY(:ids::text[])

-- name: prune_child_requests
DELETE FROM {p}requests WHERE run_id = ANY(:ids::text[])

-- name: prune_child_callbacks
DELETE FROM {p}callbacks WHERE run_id = ANY(:ids::text[])
