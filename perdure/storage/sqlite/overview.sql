-- The overview (the dashboard's first page): counts by status, activity over time, workers.
-- Each query walks an index over the rows it counts, so its cost follows the unfinished runs
-- or the time window, never the finished history (see overview.py).

-- name: unfinished_counts
-- runs_in_flight (partial on the unfinished statuses): one range per status, each a constant
-- the planner sees (a status's share of the table, from its statistics).
SELECT 'pending', count(*) FROM {p}runs WHERE status = 'pending'
UNION ALL
SELECT 'running', count(*) FROM {p}runs WHERE status = 'running'
UNION ALL
SELECT 'waiting', count(*) FROM {p}runs WHERE status = 'waiting'
UNION ALL
SELECT 'blocked', count(*) FROM {p}runs WHERE status = 'blocked'
UNION ALL
SELECT 'paused', count(*) FROM {p}runs WHERE status = 'paused'

-- name: activity_started
-- runs_created (created_at, id): the window's range only. Both bounds: a generic plan (a
-- prepared statement's) then estimates a narrow range and walks the index, not the table.
SELECT CAST((created_at - :since) / :bucket AS INTEGER) AS b, count(*)
FROM {p}runs WHERE created_at >= :since AND created_at < :until
GROUP BY b

-- name: activity_finished
-- runs_finished (status, updated_at), partial on the finished statuses: one range per status.
SELECT 'completed', CAST((updated_at - :since) / :bucket AS INTEGER) AS b, count(*)
FROM {p}runs INDEXED BY {p}runs_finished  -- not runs_runnable's whole status range
WHERE status = 'completed' AND status IN ('completed', 'failed', 'cancelled')  -- the index's own
  AND updated_at >= :since AND updated_at < :until
GROUP BY b
UNION ALL
SELECT 'failed', CAST((updated_at - :since) / :bucket AS INTEGER) AS b, count(*)
FROM {p}runs INDEXED BY {p}runs_finished  -- not runs_runnable's whole status range
WHERE status = 'failed' AND status IN ('completed', 'failed', 'cancelled')  -- the index's own
  AND updated_at >= :since AND updated_at < :until
GROUP BY b
UNION ALL
SELECT 'cancelled', CAST((updated_at - :since) / :bucket AS INTEGER) AS b, count(*)
FROM {p}runs INDEXED BY {p}runs_finished  -- not runs_runnable's whole status range
WHERE status = 'cancelled' AND status IN ('completed', 'failed', 'cancelled')  -- the index's own
  AND updated_at >= :since AND updated_at < :until
GROUP BY b

-- name: list_workers
-- runs_owner (owner, partial): a worker's held runs are counted in the index alone (a run
-- has an owner exactly while a worker holds its lease: every release clears it).
SELECT w.id, w.host, w.pid, w.started_at, w.heartbeat_at, w.serves,
       (SELECT count(*) FROM {p}runs r WHERE r.owner = w.id), w.labels
FROM {p}workers w
ORDER BY w.heartbeat_at DESC, w.id
LIMIT :limit
