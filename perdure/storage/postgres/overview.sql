-- The overview (the dashboard's first page): counts by status, activity over time, workers.
-- Each query walks an index over the rows it counts, so its cost follows the unfinished runs
-- or the time window, never the finished history (see overview.py).

-- name: unfinished_counts
-- runs_unfinished (partial on the unfinished statuses): only the unfinished rows.
SELECT status, count(*) FROM {p}runs
WHERE status NOT IN ('completed', 'failed', 'cancelled')
GROUP BY status

-- name: activity_started
-- runs_created (created_at, id): the window's range only.
SELECT floor((created_at - :since::float8) / :bucket::float8)::int AS b, count(*)
FROM {p}runs WHERE created_at >= :since::float8
GROUP BY b

-- name: activity_finished
-- runs_finished (status, updated_at), partial on the finished statuses: a range per status.
SELECT status, floor((updated_at - :since::float8) / :bucket::float8)::int AS b, count(*)
FROM {p}runs
WHERE status IN ('completed', 'failed', 'cancelled') AND updated_at >= :since::float8
GROUP BY status, b

-- name: list_workers
-- runs_owner (owner, partial): a worker's held runs are found by its id.
SELECT w.id, w.host, w.pid, w.started_at, w.heartbeat_at, w.serves,
       (SELECT count(*) FROM {p}runs r WHERE r.owner = w.id AND r.status = 'running')
FROM {p}workers w
ORDER BY w.heartbeat_at DESC, w.id
LIMIT :limit::int
