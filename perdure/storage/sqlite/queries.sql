-- Named queries of the SQLite adapter. `{p}` is the validated table prefix; every value is a
-- bound parameter. A query starts at a `-- name: NAME` line and runs to the next one.

-- name: insert_run
INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at, parent_id,
                     parent_seq, deadline, created_at, updated_at)
VALUES (:id, :workflow, :version, :wf_key, 'pending', :input, 0, :now, :parent_id,
        :parent_seq, :deadline, :now, :now)
ON CONFLICT (id) DO NOTHING

-- name: get_run
SELECT id, workflow, version, status, input, output, error, epoch, owner, lease_until, wake_at,
       parent_id, parent_seq, deadline, cancel_requested, created_at, updated_at
FROM {p}runs WHERE id = :id

-- name: list_runs
SELECT id, workflow, version, status, input, output, error, epoch, owner, lease_until, wake_at,
       parent_id, parent_seq, deadline, cancel_requested, created_at, updated_at
FROM {p}runs
WHERE (:status IS NULL OR status = :status)
  AND (:workflow IS NULL OR workflow = :workflow)
  AND (:parent_id IS NULL OR parent_id = :parent_id)
ORDER BY created_at DESC, id
LIMIT :limit

-- name: claim
-- One statement: pick runnable runs this worker has code for, take them, bump their epoch.
UPDATE {p}runs
SET status = 'running', owner = :worker, epoch = epoch + 1, lease_until = :lease_until,
    updated_at = :now, error = NULL, claimed_from = status
WHERE id IN (
    SELECT id FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wake_at <= :now
      AND wf_key IN (SELECT value FROM json_each(:keys))
    UNION ALL
    SELECT id FROM {p}runs
    WHERE status = 'running' AND lease_until < :now
      AND wf_key IN (SELECT value FROM json_each(:keys))
    LIMIT :limit
)
RETURNING id, workflow, version, input, epoch, parent_id, deadline, cancel_requested, created_at,
          claimed_from = 'running'

-- name: next_wake
SELECT min(t) FROM (
    SELECT min(wake_at) AS t FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wf_key IN (SELECT value FROM json_each(:keys))
    UNION ALL
    SELECT min(lease_until) AS t FROM {p}runs
    WHERE status = 'running' AND wf_key IN (SELECT value FROM json_each(:keys))
)

-- name: load_journal
SELECT seq, kind, name, status, attempts, output, error, due_at, started_at, finished_at
FROM {p}journal WHERE run_id = :run_id ORDER BY seq

-- name: put_entry
-- Fenced: writes nothing unless the writer still holds the run at its epoch.
INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                        started_at, finished_at)
SELECT :run_id, :seq, :kind, :name, :status, :attempts, :output, :error, :due_at,
       :started_at, :finished_at
WHERE EXISTS (SELECT 1 FROM {p}runs WHERE id = :run_id AND epoch = :epoch AND owner = :worker)
ON CONFLICT (run_id, seq) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, status = excluded.status,
    attempts = excluded.attempts, output = excluded.output, error = excluded.error,
    due_at = excluded.due_at, finished_at = excluded.finished_at

-- name: finish_run
UPDATE {p}runs
SET status = :status, output = :output, error = :error, owner = NULL, lease_until = NULL,
    wake_at = NULL, updated_at = :now
WHERE id = :run_id AND epoch = :epoch AND owner = :worker

-- name: park_run
-- Fenced. The wake condition is checked in the same transaction that parks the run, so a
-- signal, a child's completion or a cancel that committed while the run was parking wakes it
-- at once instead of being lost.
UPDATE {p}runs
SET status = :status, owner = NULL, lease_until = NULL, error = :error, updated_at = :now,
    waiting_for = :waiting_for,
    wake_at = CASE
        WHEN cancel_requested = 1 THEN :now
        WHEN EXISTS (SELECT 1 FROM {p}signals s, json_each(:waiting_for) w
                     WHERE s.run_id = :run_id AND s.consumed_seq IS NULL
                       AND w.value = 'signal:' || s.name) THEN :now
        WHEN EXISTS (SELECT 1 FROM {p}runs c, json_each(:waiting_for) w
                     WHERE w.value = 'child:' || c.id
                       AND c.status IN ('completed', 'failed', 'cancelled')) THEN :now
        ELSE :wake_at END
WHERE id = :run_id AND epoch = :epoch AND owner = :worker

-- name: wake_parent
-- A finished child wakes its parent if the parent is parked waiting for it.
UPDATE {p}runs SET wake_at = :now
WHERE id = (SELECT parent_id FROM {p}runs WHERE id = :run_id) AND status = 'waiting'
  AND EXISTS (SELECT 1 FROM json_each(waiting_for) WHERE value = 'child:' || :run_id)

-- name: heartbeat_runs
-- Only the runs the worker still drives: one it holds but abandoned (a storage error killed
-- its driver) must lapse so that another worker takes it.
UPDATE {p}runs SET lease_until = :lease_until
WHERE owner = :worker AND status = 'running' AND id IN (SELECT value FROM json_each(:runs))
RETURNING id, epoch

-- name: upsert_worker
INSERT INTO {p}workers (id, host, pid, pid_start, started_at, heartbeat_at)
VALUES (:id, :host, :pid, :pid_start, :now, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- name: delete_worker
DELETE FROM {p}workers WHERE id = :id

-- name: workers_on_host
SELECT id, pid, pid_start FROM {p}workers WHERE host = :host AND id != :me

-- name: expire_worker_runs
-- The worker is dead: its runs become claimable now rather than when their leases lapse.
UPDATE {p}runs SET lease_until = 0 WHERE owner = :worker AND status = 'running'

-- name: admin_set_status
-- Operator transitions (resume). Bumps the epoch so that a stale owner is fenced out.
UPDATE {p}runs
SET status = :status, owner = NULL, lease_until = NULL, wake_at = :now, error = NULL,
    epoch = epoch + 1, updated_at = :now
WHERE id = :run_id AND status = :from_status

-- name: delete_entries
DELETE FROM {p}journal WHERE run_id = :run_id AND seq IN (SELECT value FROM json_each(:seqs))

-- name: run_state
SELECT status FROM {p}runs WHERE id = :run_id

-- name: insert_signal
INSERT INTO {p}signals (run_id, name, payload, idempotency_key, sent_at)
VALUES (:run_id, :name, :payload, :key, :now)
ON CONFLICT (run_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING

-- name: wake_for_signal
UPDATE {p}runs SET wake_at = :now
WHERE id = :run_id AND status = 'waiting'
  AND EXISTS (SELECT 1 FROM json_each(waiting_for) WHERE value = 'signal:' || :name)

-- name: next_signal
SELECT id, payload FROM {p}signals
WHERE run_id = :run_id AND name = :name AND consumed_seq IS NULL
ORDER BY id LIMIT 1

-- name: mark_signal
UPDATE {p}signals SET consumed_seq = :seq WHERE id = :id AND consumed_seq IS NULL

-- name: request_cancel
-- The run and all its unfinished descendants; parked ones wake now to see it.
WITH RECURSIVE tree(id) AS (
    SELECT :run_id
    UNION
    SELECT r.id FROM {p}runs r JOIN tree t ON r.parent_id = t.id
)
UPDATE {p}runs
SET cancel_requested = 1, updated_at = :now,
    wake_at = CASE WHEN status = 'waiting' THEN :now ELSE wake_at END
WHERE id IN (SELECT id FROM tree)
  AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING id

-- name: cancel_flags
SELECT id FROM {p}runs WHERE owner = :worker AND status = 'running' AND cancel_requested = 1

-- Outbox (see 0009_outbox.sql). The publisher's writes are fenced by its lease term:
-- `outbox_fence` names the holder, and they write nothing when it is someone else. (SQLite
-- has one writer at a time, so a key's count and its head change together, unraced.)

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
