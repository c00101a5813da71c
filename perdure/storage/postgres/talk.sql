-- Named queries of the PostgreSQL adapter for talking to runs (events, streams, requests,
-- callbacks; tables in 0006_talk.sql), loaded with queries.sql (same conventions).

-- A workflow-side write is one statement: `own` share-locks the run's row at the writer's
-- epoch (fencing, as in start_child), `put` journals the entry, the next CTE writes the row
-- clients read, and the talk channel (:talk_channel, payload: the run id) wakes readers in
-- other processes at commit.

-- name: set_event
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                           started_at, finished_at)
    SELECT :run_id, :seq::int, :kind, :name, :status, :attempts::int, :output, :error,
           :due_at::float8, :started_at::float8, :finished_at::float8
    FROM own
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        due_at = excluded.due_at, finished_at = excluded.finished_at
    RETURNING 1
), ev AS (
    INSERT INTO {p}events (run_id, key, value, seq, updated_at)
    SELECT :run_id, :key, :value, :seq, :now::float8 FROM own
    ON CONFLICT (run_id, key) DO UPDATE SET
        value = excluded.value, seq = excluded.seq, updated_at = excluded.updated_at
    RETURNING 1
), note AS (
    SELECT pg_notify(:talk_channel, :run_id) FROM own
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT count(*) FROM note) AS notified

-- name: get_events
-- No row: no such run; one row with a NULL key: a run without events.
SELECT r.status, e.key, e.value
FROM {p}runs r
LEFT JOIN {p}events e ON e.run_id = r.id AND (:key::text IS NULL OR e.key = :key)
WHERE r.id = :run_id
ORDER BY e.key

-- name: append_stream
-- Fenced like a journal write; the next position after the stream's last item.
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), item AS (
    INSERT INTO {p}stream_items (run_id, stream, position, seq, value, written_at)
    SELECT :run_id, :stream,
           COALESCE((SELECT max(position) FROM {p}stream_items
                     WHERE run_id = :run_id AND stream = :stream), -1) + 1,
           :seq::int, :value, :now::float8
    FROM own
    RETURNING position
), note AS (
    SELECT pg_notify(:talk_channel, :run_id) FROM own
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT position FROM item) AS position,
       (SELECT count(*) FROM note) AS notified

-- name: write_stream
-- An item already at this position stays: readers may have seen it.
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                           started_at, finished_at)
    SELECT :run_id, :seq::int, :kind, :name, :status, :attempts::int, :output, :error,
           :due_at::float8, :started_at::float8, :finished_at::float8
    FROM own
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        due_at = excluded.due_at, finished_at = excluded.finished_at
    RETURNING 1
), item AS (
    INSERT INTO {p}stream_items (run_id, stream, position, seq, value, written_at)
    SELECT :run_id, :stream, :position::int, :seq, :value, :now::float8 FROM own
    ON CONFLICT (run_id, stream, position) DO NOTHING
    RETURNING 1
), note AS (
    SELECT pg_notify(:talk_channel, :run_id) FROM own
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT count(*) FROM note) AS notified

-- name: read_stream
-- The run's status and the items in one snapshot. No row: no such run; one row with a NULL
-- position: no items from :offset (yet).
SELECT r.status, i.position, i.value
FROM {p}runs r
LEFT JOIN LATERAL (
    SELECT s.position, s.value FROM {p}stream_items s
    WHERE s.run_id = r.id AND s.stream = :stream AND s.position >= :offset::int
    ORDER BY s.position
    LIMIT :limit::int
) i ON true
WHERE r.id = :run_id
ORDER BY i.position

-- name: send_request
-- As send_signal: `run` locks the run's row, so a park in progress is seen (or sees this).
-- A request id already used for this run inserts nothing (a retried send).
WITH run AS (
    SELECT id, status, waiting_for FROM {p}runs WHERE id = :run_id FOR UPDATE
), ins AS (
    INSERT INTO {p}requests (run_id, request_id, name, payload, sent_at)
    SELECT run.id, :request_id, :name, :payload, :now::float8 FROM run
    WHERE run.status NOT IN ('completed', 'failed', 'cancelled')
    ON CONFLICT (run_id, request_id) DO NOTHING
    RETURNING id
), woken AS (
    UPDATE {p}runs r SET wake_at = :now
    FROM run
    WHERE r.id = run.id AND run.status = 'waiting'
      AND ('request:' || :name) = ANY(run.waiting_for)
      AND EXISTS (SELECT 1 FROM ins)
    RETURNING r.id
), note AS (
    -- Also when the run is held in memory by a worker (running): that worker re-checks.
    SELECT pg_notify(:channel, 'request') FROM ins
)
SELECT run.status, (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM woken) AS woken, (SELECT count(*) FROM note) AS notified
FROM run

-- name: consume_request
-- As consume_signal: take the oldest pending request :name and journal it at :seq (output:
-- its id and payload as one JSON object), fenced, in one statement; with :retry a request
-- already consumed at :seq is returned again.
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), prev AS (
    SELECT q.request_id, q.payload FROM {p}requests q
    WHERE :retry::boolean AND q.run_id = :run_id AND q.consumed_seq = :seq::int
      AND q.name = :name AND EXISTS (SELECT 1 FROM own)
    LIMIT 1
), req AS (
    SELECT q.id, q.request_id, q.payload FROM {p}requests q
    WHERE q.run_id = :run_id AND q.name = :name AND q.consumed_seq IS NULL
      AND EXISTS (SELECT 1 FROM own) AND NOT EXISTS (SELECT 1 FROM prev)
    ORDER BY q.id
    LIMIT 1
    FOR UPDATE OF q
), mark AS (
    UPDATE {p}requests q SET consumed_seq = :seq
    FROM req WHERE q.id = req.id AND q.consumed_seq IS NULL
    RETURNING req.request_id, req.payload
), picked AS (
    SELECT '{"id":' || to_json(t.request_id)::text || ',"payload":' || t.payload || '}'
        AS output
    FROM (SELECT request_id, payload FROM mark
          UNION ALL SELECT request_id, payload FROM prev) AS t
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, finished_at)
    SELECT :run_id, :seq, 'request', :name, 'completed', 1, picked.output, :now::float8
    FROM picked
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = NULL,
        due_at = NULL, finished_at = excluded.finished_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT output FROM picked LIMIT 1) AS output,
       (SELECT count(*) FROM put) AS written

-- name: reply_request
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                           started_at, finished_at)
    SELECT :run_id, :seq::int, :kind, :name, :status, :attempts::int, :output, :error,
           :due_at::float8, :started_at::float8, :finished_at::float8
    FROM own
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        due_at = excluded.due_at, finished_at = excluded.finished_at
    RETURNING 1
), answered AS (
    UPDATE {p}requests q SET reply = :reply, error = :reply_error, replied_at = :now::float8
    FROM own
    WHERE q.run_id = :run_id AND q.request_id = :request_id
    RETURNING 1
), note AS (
    SELECT pg_notify(:talk_channel, :run_id) FROM own
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT count(*) FROM note) AS notified

-- name: request_state
-- No row: no such run; a NULL request_id: no such request.
SELECT r.status, q.request_id, q.consumed_seq IS NOT NULL AS taken,
       q.replied_at IS NOT NULL AS replied, q.reply, q.error
FROM {p}runs r
LEFT JOIN {p}requests q ON q.run_id = r.id AND q.request_id = :request_id
WHERE r.id = :run_id

-- name: withdraw_request
DELETE FROM {p}requests
WHERE run_id = :run_id AND request_id = :request_id AND consumed_seq IS NULL
RETURNING 1

-- name: create_callback
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                           started_at, finished_at)
    SELECT :run_id, :seq::int, :kind, :name, :status, :attempts::int, :output, :error,
           :due_at::float8, :started_at::float8, :finished_at::float8
    FROM own
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        due_at = excluded.due_at, finished_at = excluded.finished_at
    RETURNING 1
), made AS (
    INSERT INTO {p}callbacks (token, run_id, seq, created_at)
    SELECT :token, :run_id, :seq, :now::float8 FROM own
    ON CONFLICT (token) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT count(*) FROM made) AS made

-- name: callback_state
SELECT run_id, seq, completed_at IS NOT NULL AS completed, value, error
FROM {p}callbacks WHERE token = :token

-- name: complete_callback
-- Complete (or fail) a callback once and wake its run if it is parked waiting for it. `run`
-- locks the run's row (a park in progress makes this wait, as in send_signal). A concurrent
-- second completion waits for that lock, then `done` re-checks the newest callback row and
-- finds it completed: nothing is written and the adapter answers "already".
WITH cb AS (
    SELECT token, run_id, seq, completed_at FROM {p}callbacks WHERE token = :token
), run AS (
    SELECT r.id, r.status, r.waiting_for FROM {p}runs r
    WHERE r.id = (SELECT run_id FROM cb)
    FOR UPDATE
), done AS (
    UPDATE {p}callbacks c SET completed_at = :now::float8, value = :value, error = :error
    FROM run
    WHERE c.token = :token AND c.completed_at IS NULL
      AND run.status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING c.seq
), woken AS (
    UPDATE {p}runs r SET wake_at = :now
    FROM run, done
    WHERE r.id = run.id AND run.status = 'waiting'
      AND ('callback:' || done.seq) = ANY(run.waiting_for)
    RETURNING r.id
), note AS (
    -- Also when the run is held in memory by a worker (running): that worker re-checks.
    SELECT pg_notify(:channel, 'callback') FROM done
)
SELECT cb.run_id, run.status, cb.completed_at IS NOT NULL AS was_completed,
       (SELECT count(*) FROM done) AS completed,
       (SELECT count(*) FROM woken) AS woken, (SELECT count(*) FROM note) AS notified
FROM cb LEFT JOIN run ON run.id = cb.run_id
