-- Named queries of the SQLite adapter. `{p}` is the validated table prefix; every value is a
-- bound parameter. A query starts at a `-- name: NAME` line and runs to the next one.

-- name: insert_run
-- A run is 'pending' and due now, or (a delay) 'waiting' until :wake_at with :reason; a queued
-- or routed run that is due goes straight into its line (wake_at NULL; see 0018_flow.sql).
INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at, error,
                     parent_id, parent_seq, deadline, created_at, updated_at, queue,
                     partition_key, priority, vtime, requires, debounce, trace_context, tags)
VALUES (:id, :workflow, :version, :wf_key, :status, :input, 0, :wake_at, :reason, :parent_id,
        :parent_seq, :deadline, :now, :now, :queue, :key, :priority, :vtime, :requires,
        :debounce, :trace_context, :tags)
ON CONFLICT (id) DO NOTHING

-- name: get_run
SELECT id, workflow, version, status, input, output, error, epoch, owner, lease_until, wake_at,
       parent_id, parent_seq, deadline, cancel_requested, created_at, updated_at, generation,
       incarnation, pause_requested, forked_from, forked_seq, tags, queue, partition_key, priority,
       requires
FROM {p}runs WHERE id = :id

-- name: claim
-- One statement: pick runnable runs this worker has code for, take them, bump their epoch.
-- Queued and routed runs are claimed from their lines (flow.sql), never here by due time;
-- a lapsed one (its worker died) is recovered here, by a worker its selector admits. :due_by
-- (>= :now) takes parked runs a little before they fall due, so their replay is done by then;
-- never a run that has not begun (epoch 0: a delayed start must not begin early).
UPDATE {p}runs
SET status = 'running', owner = :worker, epoch = epoch + 1, lease_until = :lease_until,
    updated_at = :now, error = NULL, claimed_from = status
WHERE id IN (
    SELECT id FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wake_at <= :due_by
      AND (wake_at <= :now OR epoch > 0)
      AND wf_key IN (SELECT value FROM json_each(:keys))
      AND queue IS NULL AND requires IS NULL
    UNION ALL
    SELECT id FROM {p}runs
    WHERE status = 'running' AND lease_until < :now
      AND wf_key IN (SELECT value FROM json_each(:keys))
      AND (requires IS NULL OR NOT EXISTS (
          SELECT 1 FROM json_each(requires) t
          WHERE t.value NOT IN (SELECT value FROM json_each(:caps))))
    LIMIT :limit
)
RETURNING id, workflow, version, input, epoch, parent_id, deadline, cancel_requested, created_at,
          claimed_from = 'running', generation, wake_at, trace_context, pause_requested

-- name: fire_timers
-- Batch firing, in the claim's transaction: the timers of the runs just taken (:ids, those
-- with no cancel or pause to deliver at the timer, within their deadline, not recovered from
-- a dead worker) whose due time has passed are journaled as fired for the whole batch, instead
-- of one journal write per run after its replay (which would find them due and fire them).
UPDATE {p}journal SET status = 'completed', attempts = 1, finished_at = :now
WHERE run_id IN (SELECT value FROM json_each(:ids))
  AND kind = 'sleep' AND status = 'waiting' AND due_at <= :now

-- name: next_wake
SELECT min(t) FROM (
    SELECT min(wake_at) AS t FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wf_key IN (SELECT value FROM json_each(:keys))
      AND queue IS NULL AND requires IS NULL
    UNION ALL
    SELECT min(lease_until) AS t FROM {p}runs
    WHERE status = 'running' AND wf_key IN (SELECT value FROM json_each(:keys))
      AND (requires IS NULL OR NOT EXISTS (
          SELECT 1 FROM json_each(requires) t
          WHERE t.value NOT IN (SELECT value FROM json_each(:caps))))
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
-- signal, a child's completion, a request, a callback's completion or a cancel that committed
-- while the run was parking wakes it at once instead of being lost. A pause requested meanwhile
-- parks it as paused instead.
UPDATE {p}runs
SET status = CASE WHEN pause_requested = 1 THEN 'paused' ELSE :status END, owner = NULL, lease_until = NULL, error = :error, updated_at = :now,
    waiting_for = :waiting_for,
    wake_at = CASE
        WHEN cancel_requested = 1 THEN :now
        WHEN EXISTS (SELECT 1 FROM {p}signals s, json_each(:waiting_for) w
                     WHERE s.run_id = :run_id AND s.consumed_seq IS NULL
                       AND w.value = 'signal:' || s.name) THEN :now
        WHEN EXISTS (SELECT 1 FROM {p}runs c, json_each(:waiting_for) w
                     WHERE w.value = 'child:' || c.id
                       AND c.status IN ('completed', 'failed', 'cancelled')) THEN :now
        WHEN EXISTS (SELECT 1 FROM {p}requests q, json_each(:waiting_for) w
                     WHERE q.run_id = :run_id AND q.consumed_seq IS NULL
                       AND w.value = 'request:' || q.name) THEN :now
        WHEN EXISTS (SELECT 1 FROM {p}callbacks b, json_each(:waiting_for) w
                     WHERE b.run_id = :run_id AND b.completed_at IS NOT NULL
                       AND w.value = 'callback:' || b.seq) THEN :now
        -- a semaphore it waits for freed up while it was parking (see release_holds)
        WHEN EXISTS (SELECT 1 FROM {p}limits l, json_each(:waiting_for) w
                     WHERE w.value = 'limit:' || l.name AND l.concurrency IS NOT NULL
                       AND (SELECT count(*) FROM {p}limit_holds h JOIN {p}runs x
                            ON x.id = h.run_id AND x.epoch = h.epoch AND x.status = 'running'
                            WHERE h.name = l.name) < l.concurrency) THEN :now
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
INSERT INTO {p}workers (id, host, pid, pid_start, started_at, heartbeat_at, serves, labels,
                       wake_addr)
VALUES (:id, :host, :pid, :pid_start, :now, :now, :serves, :labels, :wake_addr)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, serves = excluded.serves,
                               labels = excluded.labels, wake_addr = excluded.wake_addr

-- name: wake_addresses
-- Where to push after a commit that can make work runnable (push.py); a dead worker's row
-- stays until a peer reaps it, and sending to it fails harmlessly.
SELECT wake_addr FROM {p}workers WHERE wake_addr IS NOT NULL

-- name: delete_worker
DELETE FROM {p}workers WHERE id = :id

-- name: workers_on_host
SELECT id, pid, pid_start FROM {p}workers WHERE host = :host AND id != :me

-- name: expire_worker_runs
-- The worker is dead: its runs become claimable now rather than when their leases lapse.
UPDATE {p}runs SET lease_until = 0 WHERE owner = :worker AND status = 'running'

-- name: admin_ending
-- Operator transitions (resume), in one transaction: how the run ended (if it still has the
-- status the operator saw) ...
SELECT generation, status, error, updated_at FROM {p}runs
WHERE id = :run_id AND status = :from_status

-- name: insert_resume
-- ... kept as a resume ...
INSERT INTO {p}resumes (run_id, generation, status, error, ended_at, resumed_at)
VALUES (:run_id, :generation, :status, :error, :ended_at, :now)
RETURNING id

-- name: supersede_entries
-- ... the entries to execute again copied to the history ...
INSERT INTO {p}journal_history (resume_id, run_id, seq, kind, name, status, attempts, output,
                                error, due_at, started_at, finished_at)
SELECT :resume_id, run_id, seq, kind, name, status, attempts, output, error, due_at,
       started_at, finished_at
FROM {p}journal WHERE run_id = :run_id AND seq IN (SELECT value FROM json_each(:seqs))

-- name: delete_entries
-- ... and out of the journal that replay reads ...
DELETE FROM {p}journal WHERE run_id = :run_id AND seq IN (SELECT value FROM json_each(:seqs))

-- name: admin_set_status
-- ... and the run requeued in its new generation. Bumps the epoch so that a stale owner is
-- fenced out.
UPDATE {p}runs
SET status = :status, owner = NULL, lease_until = NULL, wake_at = :now, error = NULL,
    epoch = epoch + 1, updated_at = :now, generation = generation + :bump
WHERE id = :run_id AND status = :from_status

-- name: load_resumes
-- (An incarnation that continued as new is not a resume: see load_incarnations.)
SELECT id, generation, status, error, ended_at, resumed_at FROM {p}resumes
WHERE run_id = :run_id AND status <> 'continued' ORDER BY id

-- name: load_superseded
SELECT resume_id, seq, kind, name, status, attempts, output, error, due_at, started_at,
       finished_at
FROM {p}journal_history
WHERE run_id = :run_id
  AND resume_id IN (SELECT id FROM {p}resumes WHERE run_id = :run_id AND status <> 'continued')
ORDER BY resume_id, seq

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

-- name: put_blob
INSERT INTO {p}blobs (key, data, size, created_at) VALUES (:key, :data, :size, :now)
ON CONFLICT (key) DO NOTHING

-- name: get_blob
SELECT data FROM {p}blobs WHERE key = :key

-- name: delete_blob
DELETE FROM {p}blobs WHERE key = :key

-- name: blob_exists
SELECT 1 FROM {p}blobs WHERE key = :key

-- Long-lived runs and changing code (migration 13) ------------------------------------------

-- name: continue_ending
-- Continue-as-new, in one transaction (fenced: only the run's owner at its epoch): what the
-- ending incarnation ran with ...
SELECT generation, workflow, version, input FROM {p}runs
WHERE id = :run_id AND epoch = :epoch AND owner = :worker

-- name: insert_incarnation
-- ... kept as a 'continued' row of the history ...
INSERT INTO {p}resumes (run_id, generation, status, error, ended_at, resumed_at, input,
                        version)
VALUES (:run_id, :generation, 'continued', NULL, :now, :now, :input, :version)
RETURNING id

-- name: archive_journal
-- ... with its whole journal ...
INSERT INTO {p}journal_history (resume_id, run_id, seq, kind, name, status, attempts, output,
                                error, due_at, started_at, finished_at)
SELECT :resume_id, run_id, seq, kind, name, status, attempts, output, error, due_at,
       started_at, finished_at
FROM {p}journal WHERE run_id = :run_id

-- name: clear_journal
DELETE FROM {p}journal WHERE run_id = :run_id

-- name: forget_consumed_signals
-- A consumed signal names the seq of the wait that took it; seqs restart with the new
-- journal, so the rows go (their payloads stay in the archived journal). Unconsumed signals
-- stay buffered for the new incarnation.
DELETE FROM {p}signals WHERE run_id = :run_id AND consumed_seq IS NOT NULL

-- name: start_incarnation
-- ... and the run requeued with its new arguments, in a new generation (new step keys).
UPDATE {p}runs
SET status = CASE WHEN pause_requested = 1 THEN 'paused' ELSE 'pending' END, owner = NULL,
    lease_until = NULL, wake_at = :now, error = NULL, output = NULL, waiting_for = NULL,
    input = :input, version = :version, wf_key = :wf_key, epoch = epoch + 1,
    generation = generation + 1, incarnation = incarnation + 1, updated_at = :now
WHERE id = :run_id AND epoch = :epoch AND owner = :worker

-- name: load_incarnations
SELECT id, generation, version, input, ended_at FROM {p}resumes
WHERE run_id = :run_id AND status = 'continued' ORDER BY id

-- name: load_incarnation_entries
SELECT resume_id, seq, kind, name, status, attempts, output, error, due_at, started_at,
       finished_at
FROM {p}journal_history
WHERE run_id = :run_id
  AND resume_id IN (SELECT id FROM {p}resumes WHERE run_id = :run_id AND status = 'continued')
ORDER BY resume_id, seq

-- name: insert_fork
-- A fork: a new run with the source's workflow, version and arguments ... Its epoch starts at
-- 1, not 0: the runner reads no journal on a run's first claim (epoch 1), and a fork has one.
INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at,
                     created_at, updated_at, forked_from, forked_seq)
SELECT :id, workflow, version, wf_key, 'pending', input, 1, :now, :now, :now, id, :upto
FROM {p}runs WHERE id = :source
ON CONFLICT (id) DO NOTHING

-- name: copy_journal
-- ... and the source's journal entries before the fork point.
INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                        started_at, finished_at)
SELECT :id, seq, kind, name, status, attempts, output, error, due_at, started_at, finished_at
FROM {p}journal WHERE run_id = :source AND seq < :upto

-- name: request_pause
-- A parked or pending run is paused at once; a running one is flagged and parks as paused at
-- its next durable await (see park_run). Returns the status after.
UPDATE {p}runs
SET pause_requested = 1, updated_at = :now,
    status = CASE WHEN status IN ('pending', 'waiting') THEN 'paused' ELSE status END
WHERE id = :run_id AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING status

-- name: unpause
-- Resume a paused run (claimable now), or withdraw a pause not yet reached.
UPDATE {p}runs
SET pause_requested = 0, updated_at = :now,
    status = CASE WHEN status = 'paused' THEN 'pending' ELSE status END,
    wake_at = CASE WHEN status = 'paused' THEN :now ELSE wake_at END
WHERE id = :run_id AND (pause_requested = 1 OR status = 'paused')
RETURNING status

-- name: pause_flags
SELECT id FROM {p}runs WHERE owner = :worker AND status = 'running' AND pause_requested = 1

-- name: stranded_runs
-- Unfinished runs whose workflow key no live worker (heartbeat since :live_after) serves.
SELECT id, workflow, version, status, input, output, error, epoch, owner, lease_until, wake_at,
       parent_id, parent_seq, deadline, cancel_requested, created_at, updated_at, generation,
       incarnation, pause_requested, forked_from, forked_seq, tags, queue, partition_key, priority,
       requires
FROM {p}runs r
WHERE status NOT IN ('completed', 'failed', 'cancelled')
  AND (:workflow IS NULL OR workflow = :workflow)
  AND NOT EXISTS (SELECT 1 FROM {p}workers w, json_each(w.serves) s
                  WHERE w.heartbeat_at >= :live_after AND s.value = r.wf_key)
ORDER BY created_at DESC, id
LIMIT :limit

-- name: stranded_summary
SELECT workflow, version, count(*) FROM {p}runs r
WHERE status NOT IN ('completed', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM {p}workers w, json_each(w.serves) s
                  WHERE w.heartbeat_at >= :live_after AND s.value = r.wf_key)
GROUP BY workflow, version
ORDER BY workflow, version

-- name: served_keys
SELECT DISTINCT s.value FROM {p}workers w, json_each(w.serves) s
WHERE w.heartbeat_at >= :live_after
ORDER BY s.value

-- name: claim_run
-- One run by id (a host driving the run a queue message named), taken exactly when claim would
-- take it: runnable now, or running under a lapsed lease. Nothing when another worker holds it
-- or it has ended, so a second delivery of the same message drives nothing. A queued or
-- routed run is not taken by id: its queue's limits (or its selector) decide, in its line.
UPDATE {p}runs
SET status = 'running', owner = :worker, epoch = epoch + 1, lease_until = :lease_until,
    updated_at = :now, error = NULL, claimed_from = status
WHERE id = :run_id AND wf_key IN (SELECT value FROM json_each(:keys))
  AND ((status IN ('pending', 'waiting') AND wake_at <= :now AND queue IS NULL
        AND requires IS NULL)
       OR (status = 'running' AND lease_until < :now AND requires IS NULL))
RETURNING id, workflow, version, input, epoch, parent_id, deadline, cancel_requested, created_at,
          claimed_from = 'running', generation, wake_at, trace_context, pause_requested

-- name: count_due
-- Parked runs whose wake-up time has come (a timer, a retry back-off or a timeout, or a signal
-- or a child's end that woke them): claimable now.
SELECT count(*) FROM {p}runs
WHERE status = 'waiting' AND wake_at <= :now AND wf_key IN (SELECT value FROM json_each(:keys))
