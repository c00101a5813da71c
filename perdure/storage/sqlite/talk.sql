-- Named queries of the SQLite adapter for talking to runs (events, streams, requests,
-- callbacks; tables in 0006_talk.sql), loaded with queries.sql (same conventions).

-- The workflow-side writes run in one transaction with a fenced put_entry (the adapter's
-- talk.py), so a row exists only with its journal entry.

-- name: upsert_event
INSERT INTO {p}events (run_id, key, value, seq, updated_at)
VALUES (:run_id, :key, :value, :seq, :now)
ON CONFLICT (run_id, key) DO UPDATE SET
    value = excluded.value, seq = excluded.seq, updated_at = excluded.updated_at

-- name: get_events
SELECT key, value FROM {p}events
WHERE run_id = :run_id AND (:key IS NULL OR key = :key)
ORDER BY key

-- name: insert_stream_item
-- An item already at this position stays: readers may have seen it.
INSERT INTO {p}stream_items (run_id, stream, position, seq, value, written_at)
VALUES (:run_id, :stream, :position, :seq, :value, :now)
ON CONFLICT (run_id, stream, position) DO NOTHING

-- name: append_stream_item
-- Fenced like a journal write; the next position after the stream's last item.
INSERT INTO {p}stream_items (run_id, stream, position, seq, value, written_at)
SELECT :run_id, :stream,
       COALESCE((SELECT MAX(position) FROM {p}stream_items
                 WHERE run_id = :run_id AND stream = :stream), -1) + 1,
       :seq, :value, :now
WHERE EXISTS (SELECT 1 FROM {p}runs WHERE id = :run_id AND epoch = :epoch AND owner = :worker)
RETURNING position

-- name: read_stream
SELECT position, value FROM {p}stream_items
WHERE run_id = :run_id AND stream = :stream AND position >= :offset
ORDER BY position
LIMIT :limit

-- name: insert_request
INSERT INTO {p}requests (run_id, request_id, name, payload, sent_at)
VALUES (:run_id, :request_id, :name, :payload, :now)
ON CONFLICT (run_id, request_id) DO NOTHING

-- name: wake_for_request
UPDATE {p}runs SET wake_at = :now
WHERE id = :run_id AND status = 'waiting'
  AND EXISTS (SELECT 1 FROM json_each(waiting_for) WHERE value = 'request:' || :name)

-- name: next_request
SELECT id, request_id, payload FROM {p}requests
WHERE run_id = :run_id AND name = :name AND consumed_seq IS NULL
ORDER BY id LIMIT 1

-- name: mark_request
UPDATE {p}requests SET consumed_seq = :seq WHERE id = :id AND consumed_seq IS NULL

-- name: answer_request
UPDATE {p}requests SET reply = :reply, error = :reply_error, replied_at = :now
WHERE run_id = :run_id AND request_id = :request_id

-- name: request_state
SELECT r.status, q.request_id, q.consumed_seq IS NOT NULL, q.replied_at IS NOT NULL, q.reply,
       q.error
FROM {p}runs r LEFT JOIN {p}requests q ON q.run_id = r.id AND q.request_id = :request_id
WHERE r.id = :run_id

-- name: withdraw_request
DELETE FROM {p}requests
WHERE run_id = :run_id AND request_id = :request_id AND consumed_seq IS NULL

-- name: insert_callback
INSERT INTO {p}callbacks (token, run_id, seq, created_at)
VALUES (:token, :run_id, :seq, :now)
ON CONFLICT (token) DO NOTHING

-- name: callback_state
SELECT run_id, seq, completed_at IS NOT NULL, value, error FROM {p}callbacks
WHERE token = :token

-- name: callback_run
SELECT b.run_id, b.seq, b.completed_at IS NOT NULL, r.status
FROM {p}callbacks b JOIN {p}runs r ON r.id = b.run_id
WHERE b.token = :token

-- name: complete_callback
UPDATE {p}callbacks SET completed_at = :now, value = :value, error = :error
WHERE token = :token AND completed_at IS NULL

-- name: wake_for_callback
UPDATE {p}runs SET wake_at = :now
WHERE id = :run_id AND status = 'waiting'
  AND EXISTS (SELECT 1 FROM json_each(waiting_for) WHERE value = 'callback:' || :seq)
