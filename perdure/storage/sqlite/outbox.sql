-- The outbox's named queries (see 0009_outbox.sql; the conventions of queries.sql). The
-- publisher's writes are fenced by its lease term: `outbox_fence` names the holder, and they
-- write nothing when it is someone else. (SQLite has one writer at a time, so a key's count
-- and its head change together, unraced.)

-- name: outbox_owned
SELECT 1 FROM {p}runs WHERE id = :run_id AND epoch = :epoch AND owner = :worker

-- name: outbox_put_entry
-- The emit's journal entry; written once (a retry after an unknown outcome finds it there).
INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                        started_at, finished_at)
VALUES (:run_id, :seq, :kind, :name, :status, :attempts, :output, :error, :due_at,
        :started_at, :finished_at)
ON CONFLICT (run_id, seq) DO NOTHING

-- name: outbox_exists
-- An event id already present is the same event (a resumed run emitting at the same point).
SELECT 1 FROM {p}outbox WHERE id = :id

-- name: outbox_count_key
-- One more undelivered event of the key; the new count (1: the event is the key's head).
INSERT INTO {p}outbox_keys (key, pending) VALUES (:key, :n)
ON CONFLICT (key) DO UPDATE SET pending = pending + excluded.pending
RETURNING pending

-- name: outbox_insert
INSERT INTO {p}outbox (id, run_id, seq, name, key, payload, created_at, ready_at)
VALUES (:id, :run_id, :seq, :event_name, :key, :payload, :now, :ready_at)

-- name: outbox_lead
-- Take or renew the publisher's lease: free, lapsed, ours already, or held by a worker that
-- is no longer registered (the reaper forgot it: it died). A change of holder bumps the term.
UPDATE {p}outbox_leader
SET term = CASE WHEN owner = :worker THEN term ELSE term + 1 END,
    owner = :worker, lease_until = :lease_until
WHERE name = 'publisher'
  AND (owner = :worker OR owner IS NULL OR lease_until < :now
       OR owner NOT IN (SELECT id FROM {p}workers))
RETURNING term

-- name: outbox_resign
UPDATE {p}outbox_leader SET owner = NULL, lease_until = 0
WHERE name = 'publisher' AND owner = :worker AND term = :term

-- name: outbox_fence
SELECT 1 FROM {p}outbox_leader WHERE name = 'publisher' AND owner = :worker AND term = :term

-- name: outbox_due
-- Events that may be tried (heads of their key, or without a key), soonest first, except
-- those being delivered already; through the ready index, however long the backlog. The
-- caller asks for one more than it takes: the first one not due yet tells when to look again.
SELECT id, name, key, payload, run_id, position, created_at, attempts, last_error, ready_at
FROM {p}outbox
WHERE ready_at IS NOT NULL AND id NOT IN (SELECT value FROM json_each(:busy))
ORDER BY ready_at, position
LIMIT :limit

-- name: outbox_remove
-- A delivered (or buried) event leaves the outbox; its key's count goes down with it.
DELETE FROM {p}outbox WHERE id = :id RETURNING key

-- name: outbox_uncount_key
UPDATE {p}outbox_keys SET pending = pending - 1 WHERE key = :key RETURNING pending

-- name: outbox_forget_key
DELETE FROM {p}outbox_keys WHERE key = :key AND pending <= 0

-- name: outbox_promote
-- The key's next event becomes its head, unless one is ready already.
UPDATE {p}outbox SET ready_at = :now
WHERE position = (SELECT min(position) FROM {p}outbox WHERE key = :key)
  AND ready_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {p}outbox WHERE key = :key AND ready_at IS NOT NULL)
RETURNING id, name, key, payload, run_id, position, created_at, attempts, last_error, ready_at

-- name: outbox_retry
UPDATE {p}outbox SET attempts = :attempts, ready_at = :next_at, last_error = :error
WHERE id = :id

-- name: outbox_bury
INSERT INTO {p}outbox_dead (position, id, run_id, seq, name, key, payload, created_at,
                            attempts, last_error, failed_at)
SELECT position, id, run_id, seq, name, key, payload, created_at, :attempts, :error, :now
FROM {p}outbox WHERE id = :id
ON CONFLICT DO NOTHING

-- name: outbox_pending
SELECT id, name, key, payload, run_id, position, created_at, attempts, last_error, ready_at
FROM {p}outbox
WHERE (:key IS NULL OR key = :key)
ORDER BY position
LIMIT :limit

-- name: outbox_dead_list
SELECT id, name, key, payload, run_id, position, created_at, attempts, last_error, failed_at
FROM {p}outbox_dead
ORDER BY position
LIMIT :limit

-- name: outbox_dead_chosen
SELECT position, id, run_id, seq, name, key, payload, created_at FROM {p}outbox_dead
WHERE :all OR id IN (SELECT value FROM json_each(:ids))
ORDER BY position

-- name: outbox_unbury
DELETE FROM {p}outbox_dead WHERE id = :id

-- name: outbox_reinsert
-- A dead letter back at its old position, with a fresh set of attempts (waiting: its key's
-- head is chosen afterwards).
INSERT INTO {p}outbox (position, id, run_id, seq, name, key, payload, created_at, attempts,
                       ready_at, last_error)
VALUES (:position, :id, :run_id, :seq, :event_name, :key, :payload, :created_at, 0,
        :ready_at, NULL)
ON CONFLICT DO NOTHING

-- name: outbox_purge
DELETE FROM {p}outbox_dead
WHERE (:all OR id IN (SELECT value FROM json_each(:ids)))
  AND (:before IS NULL OR failed_at < :before)

-- name: outbox_recount
-- Repair (a new publisher's first act, in one transaction with the three below): the keys'
-- counts from the events themselves, so that nothing done to the tables by hand can leave a
-- key without a head.
DELETE FROM {p}outbox_keys

-- name: outbox_recount_fill
INSERT INTO {p}outbox_keys (key, pending)
SELECT key, count(*) FROM {p}outbox WHERE key IS NOT NULL GROUP BY key

-- name: outbox_recount_heads
UPDATE {p}outbox SET ready_at = :now
WHERE position IN (SELECT min(position) FROM {p}outbox WHERE key IS NOT NULL GROUP BY key)
  AND key NOT IN (SELECT key FROM {p}outbox WHERE key IS NOT NULL AND ready_at IS NOT NULL)

-- name: outbox_recount_free
UPDATE {p}outbox SET ready_at = :now WHERE key IS NULL AND ready_at IS NULL

-- name: outbox_stats
SELECT (SELECT count(*) FROM {p}outbox),
       (SELECT count(*) FROM {p}outbox WHERE attempts > 0),
       (SELECT count(*) FROM {p}outbox_dead),
       (SELECT min(created_at) FROM {p}outbox),
       (SELECT owner FROM {p}outbox_leader WHERE name = 'publisher' AND lease_until >= :now)
