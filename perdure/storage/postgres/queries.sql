-- Named queries of the PostgreSQL adapter. `{p}` is the validated (possibly schema-qualified)
-- table prefix; every value is a bound parameter, written `:name` here and turned into `$n`
-- by the adapter. A query starts at a `-- name: NAME` line and runs to the next one.
--
-- Concurrency model (READ COMMITTED, the default). Each statement sees the data committed when
-- it started, and an UPDATE or a locking SELECT that meets a row changed by a concurrent
-- transaction waits for it, then re-checks its WHERE on the newest version of that row only
-- (other tables stay as of the snapshot). Three consequences shape the statements below:
--
-- 1. Fencing. A fenced UPDATE (finish, park) re-checks (id, epoch, owner) on the newest row,
--    so it can never overwrite a newer claim. A fenced INSERT into another table (the journal,
--    signals, a child) first takes FOR SHARE on the run's row: a concurrent claim (an UPDATE)
--    must wait for the write to commit, or the write waits for the claim and then sees the
--    new epoch and writes nothing. Without the lock, an old owner whose snapshot predates a
--    claim could commit an entry after the new owner loaded the journal and then upsert over
--    the new owner's entry.
-- 2. No lost wake-ups. A park and an event (signal, child finished, cancel) serialize on the
--    parked run's row, and whoever goes second sees the first: see park_lock / park_run,
--    send_signal and finish_run.
-- 3. Lock order. Statements that lock several runs rows lock them in id order (ORDER BY id
--    under FOR UPDATE/SHARE locks in that order), so they cannot deadlock with each other.
--    The one exception is a cancel, which must lock the root of its tree first; a deadlock it
--    causes (rare: a cancel racing a write of a descendant with a smaller id) is detected by
--    the server, and the adapter re-runs the transaction it aborted.
--
-- A NOTIFY (pg_notify, delivered at commit, so a woken worker sees the change) goes out on the
-- adapter's channel (:channel) whenever a run becomes runnable.

-- name: insert_run
-- The run, and its tags (only if the run is new: an idempotent start keeps the first tags).
-- A run is 'pending' and due now, or (a delay) 'waiting' until :wake_at with :reason; a queued
-- or routed run that is due goes straight into its line (wake_at NULL; see 0018_flow.sql).
-- A queued run's place in its line comes from `slot` (fair queueing, as in flow.sql's
-- queue_slot on SQLite: 1/weight after its key's previous run, no earlier than the queue's
-- virtual clock); the upsert's row lock orders concurrent starts of one key.
WITH slot AS (
    INSERT INTO {p}queue_keys AS k (queue, key, finish)
    SELECT :queue::text, coalesce(:key::text, ''),
           coalesce((SELECT vclock FROM {p}queues WHERE name = :queue), 0) + :share::float8
    WHERE :queue IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p}runs WHERE id = :id)
    ON CONFLICT (queue, key) DO UPDATE SET
        finish = greatest(k.finish, coalesce((SELECT vclock FROM {p}queues
                                              WHERE name = :queue), 0)) + :share
    RETURNING finish - :share AS vtime
), ins AS (
    INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at, error,
                         parent_id, parent_seq, deadline, created_at, updated_at, queue,
                         partition_key, priority, vtime, requires, debounce, trace_context,
                         tags)
    VALUES (:id, :workflow, :version, :wf_key, :status, :input, 0, :wake_at::float8, :reason,
            :parent_id, :parent_seq::int, :deadline::float8, :now::float8, :now, :queue, :key,
            :priority::int, coalesce((SELECT vtime FROM slot), :now), :requires::text[],
            :debounce::boolean, :trace_context::text, :tags)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), tagged AS (
    INSERT INTO {p}tags (run_id, key, value, created_at)
    SELECT ins.id, t.key, t.value, :now FROM ins,
           unnest(:tag_keys::text[], :tag_values::text[]) AS t(key, value)
), note AS (
    SELECT pg_notify(:channel, 'run') FROM ins
)
SELECT (SELECT count(*) FROM ins) AS created, (SELECT count(*) FROM note) AS notified

-- name: get_run
SELECT id, workflow, version, status, input, output, error, epoch, owner, lease_until, wake_at,
       parent_id, parent_seq, deadline, cancel_requested, created_at, updated_at, generation,
       incarnation, pause_requested, forked_from, forked_seq, tags, queue, partition_key, priority,
       requires
FROM {p}runs WHERE id = :id

-- name: claim
-- One statement: lock up to :limit runnable runs this worker has code for, skipping rows other
-- workers are locking right now, and take them (bumping the epoch). Due runs come first, in due
-- order, through runs_due; runs with a lapsed lease (a dead worker) through runs_leased. The
-- second branch is only read when the first did not fill the limit. (FOR UPDATE is not allowed
-- directly under UNION, hence one CTE per branch.) The error column of a parked run holds its
-- waiting reason, which means nothing once it runs: it is cleared (RunInfo.from_row would
-- read it as a JSON error of a running run). Queued and routed runs are claimed from their
-- lines under their limits (flow.sql), never here by due time; a lapsed one is recovered
-- here, by a worker whose capabilities (:caps) its selector admits. :due_by (>= :now) takes
-- parked runs a little before they fall due, so that their replay is done by then; never a
-- run that has not begun (epoch 0: a delayed start must not begin early).
WITH due AS (
    SELECT id FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
      AND wake_at <= :due_by::float8 AND (wake_at <= :now OR epoch > 0)
      AND queue IS NULL AND requires IS NULL AND wf_key = ANY(:keys::text[])
    ORDER BY wake_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), lapsed AS (
    SELECT id FROM {p}runs
    WHERE status = 'running' AND lease_until < :now AND wf_key = ANY(:keys)
      AND (requires IS NULL OR requires <@ :caps::text[])
    ORDER BY lease_until
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), picked AS (
    -- recovered: taken from a dead or lapsed worker, whose step may have run unjournaled
    SELECT id, recovered FROM (SELECT id, false AS recovered FROM due
                               UNION ALL SELECT id, true FROM lapsed) AS both_
    LIMIT :limit
), taken AS (
    UPDATE {p}runs r
    SET status = 'running', owner = :worker, epoch = r.epoch + 1, error = NULL,
        lease_until = :lease_until::float8, updated_at = :now
    FROM picked
    WHERE r.id = picked.id
    RETURNING r.id, r.workflow, r.version, r.input, r.epoch, r.parent_id, r.deadline,
              r.cancel_requested, r.created_at, picked.recovered, r.generation, r.wake_at,
              r.trace_context, r.pause_requested
), fired AS (
    -- Batch firing: the timers of the runs taken whose due time has passed are journaled as
    -- fired here, for the whole batch, instead of one journal write per run after its replay
    -- (which would find them due and fire them at once). Not for a run with a cancel or a
    -- pause to deliver, or past its deadline: that is delivered at the timer, by the replay.
    -- A run recovered from a dead worker is left to its replay too.
    UPDATE {p}journal j SET status = 'completed', attempts = 1, finished_at = :now
    FROM taken t
    WHERE j.run_id = t.id AND j.kind = 'sleep' AND j.status = 'waiting'
      AND j.due_at <= :now AND NOT t.recovered AND NOT t.cancel_requested
      AND NOT t.pause_requested AND (t.deadline IS NULL OR t.deadline > :now)
)
SELECT * FROM taken

-- name: claim_give_back
-- A claim whose outcome is unknown (the connection dropped before the reply): runs it may have
-- taken are handed back (claimable now) so they are not left owned by a worker that does not
-- know it holds them. The claim stamped them with updated_at = :now. (With a frozen test clock
-- this may also match runs this worker did get; their new claim fences the old drive off.)
UPDATE {p}runs SET lease_until = 0
WHERE owner = :worker AND status = 'running' AND updated_at = :now::float8

-- name: next_wake
SELECT least(
    (SELECT min(wake_at) FROM {p}runs
     WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
       AND queue IS NULL AND requires IS NULL AND wf_key = ANY(:keys::text[])),
    (SELECT min(lease_until) FROM {p}runs
     WHERE status = 'running' AND wf_key = ANY(:keys)
       AND (requires IS NULL OR requires <@ :caps::text[])))

-- name: load_journal
SELECT seq, kind, name, status, attempts, output, error, due_at, started_at, finished_at
FROM {p}journal WHERE run_id = :run_id ORDER BY seq

-- name: put_entries
-- Group commit: every journal write queued while the previous batch was in flight, for any
-- number of runs, in one statement (one transaction). Per-row fencing: a row is written only
-- if its writer still holds the run at its epoch (checked on the newest, share-locked row);
-- RETURNING names the rows written, so each caller learns its own outcome. The adapter never
-- puts two entries with the same (run_id, seq) in one batch (ON CONFLICT cannot touch a row
-- twice in one statement).
WITH batch AS (
    SELECT * FROM unnest(:run_id::text[], :epoch::bigint[], :worker::text[], :seq::int[],
                         :kind::text[], :name::text[], :status::text[], :attempts::int[],
                         :output::text[], :error::text[], :due_at::float8[],
                         :started_at::float8[], :finished_at::float8[])
        AS b(run_id, epoch, worker, seq, kind, name, status, attempts, output, error, due_at,
             started_at, finished_at)
), owned AS (
    SELECT r.id, r.epoch, r.owner FROM {p}runs r
    WHERE r.id IN (SELECT run_id FROM batch)
    ORDER BY r.id
    FOR SHARE
)
INSERT INTO {p}journal AS j (run_id, seq, kind, name, status, attempts, output, error, due_at,
                             started_at, finished_at)
SELECT b.run_id, b.seq, b.kind, b.name, b.status, b.attempts, b.output, b.error, b.due_at,
       b.started_at, b.finished_at
FROM batch b JOIN owned o ON o.id = b.run_id AND o.epoch = b.epoch AND o.owner = b.worker
ON CONFLICT (run_id, seq) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, status = excluded.status,
    attempts = excluded.attempts, output = excluded.output, error = excluded.error,
    due_at = excluded.due_at, finished_at = excluded.finished_at
RETURNING j.run_id, j.seq

-- name: put_entry
-- One journal entry (a lone write: see writer.py), with the fence of put_entries: the run's
-- row share-locked at the writer's epoch (a concurrent claim waits for this write to commit,
-- or this waits for the claim and then finds the new epoch and writes nothing). Scalar
-- parameters instead of 13 arrays: ~100 µs less per write on the bench box (bench/postgres.md).
-- Parameters in the order of writer.Entry. The adapter reads the command's row count (1:
-- written, 0: fenced off).
WITH owned AS (
    SELECT 1 FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
)
INSERT INTO {p}journal AS j (run_id, seq, kind, name, status, attempts, output, error, due_at,
                             started_at, finished_at)
SELECT :run_id, :seq::int, :kind, :name, :status, :attempts::int, :output::text, :error::text,
       :due_at::float8, :started_at::float8, :finished_at::float8
FROM owned
ON CONFLICT (run_id, seq) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, status = excluded.status,
    attempts = excluded.attempts, output = excluded.output, error = excluded.error,
    due_at = excluded.due_at, finished_at = excluded.finished_at

-- name: finish_run
-- Fenced terminal (or blocked) status. A parent parked waiting for this run is woken in the
-- same statement. `locked` takes this run's row and its parent's, in id order (a heartbeat
-- of a worker driving both locks them in that order too). No lost wake-up: the parent's row
-- is locked unconditionally, so if the parent is parking right now this waits for the park
-- to commit and then reads the parked row (a locking read returns the newest version); if
-- this goes first, the park (which locks its row before checking, see park_lock) sees this
-- run finished. The fence is re-checked by `fin` on the newest version of this run's row.
WITH locked AS (
    SELECT r.id, r.status, r.waiting_for FROM {p}runs r
    WHERE r.id = ANY(ARRAY[:run_id::text,
                           (SELECT c.parent_id FROM {p}runs c WHERE c.id = :run_id)])
    ORDER BY r.id
    FOR UPDATE
), fin AS (
    UPDATE {p}runs r
    SET status = :status, output = :output, error = :error, owner = NULL, lease_until = NULL,
        wake_at = NULL, updated_at = :now::float8
    FROM locked
    WHERE r.id = locked.id AND r.id = :run_id AND r.epoch = :epoch::bigint
      AND r.owner = :worker
    RETURNING r.parent_id, r.queue
), slot AS (
    -- a queued run gave its slot back: the workers serving its queue look again
    SELECT pg_notify(:channel, 'slot') FROM fin WHERE fin.queue IS NOT NULL
), woken AS (
    UPDATE {p}runs p SET wake_at = :now
    FROM locked, fin
    WHERE p.id = locked.id AND locked.id = fin.parent_id AND locked.status = 'waiting'
      AND ('child:' || :run_id) = ANY(locked.waiting_for)
    RETURNING p.id
), note AS (
    -- The parked parent just woken, or a parent held in memory by a worker (running: it
    -- waits for this child lingering in memory, or will read it when it gets there). That
    -- worker may be another process: without a push it would learn of the end only when its
    -- wait ran out (park_after) and the park found the child finished.
    SELECT pg_notify(:channel, 'child') FROM locked, fin
    WHERE locked.id = fin.parent_id
      AND (locked.status = 'running' OR locked.id IN (SELECT id FROM woken))
), talk AS (
    -- Readers of the run's streams and callers awaiting a reply learn that it ended.
    SELECT pg_notify(:talk_channel, :run_id) FROM fin
    WHERE EXISTS (SELECT 1 FROM {p}stream_items s WHERE s.run_id = :run_id)
       OR EXISTS (SELECT 1 FROM {p}requests q
                  WHERE q.run_id = :run_id AND q.replied_at IS NULL)
)
SELECT (SELECT count(*) FROM fin) AS finished, (SELECT count(*) FROM note) AS notified,
       (SELECT count(*) FROM talk) AS talked, (SELECT count(*) FROM slot) AS freed

-- name: finish_applied
-- After a lost acknowledgement: did our finish (or park) commit? Nothing but our own write
-- releases the run at our epoch with exactly this status and time stamp.
SELECT 1 FROM {p}runs
WHERE id = :run_id AND epoch = :epoch::bigint AND owner IS NULL
  AND status IN (:status, 'paused') AND updated_at = :now::float8

-- name: park_lock
-- Step 1 of a park (same transaction as park_run): fence and lock the run's row. Any event
-- sender locks this row too (send_signal, finish_run's `parent`, request_cancel), so from here
-- on no event can commit unseen: one that committed before this lock is visible to park_run
-- (a new statement, a new snapshot), and one that comes later waits for the park to commit
-- and then finds the run parked and waiting for it.
SELECT 1 FROM {p}runs
WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
FOR UPDATE

-- name: park_run
-- Step 2 of a park: release the run to :status until :wake_at or an awaited event, checking
-- whether an event already happened. Must run in park_lock's transaction, after it. A pause
-- requested meanwhile parks it as paused instead.
WITH parked AS (
    UPDATE {p}runs
    SET status = CASE WHEN pause_requested THEN 'paused' ELSE :status END, owner = NULL, lease_until = NULL, error = :error,
        updated_at = :now::float8, waiting_for = :waiting_for::text[],
        wake_at = CASE
            WHEN cancel_requested THEN :now
            WHEN EXISTS (SELECT 1 FROM {p}signals s
                         WHERE s.run_id = :run_id AND s.consumed_seq IS NULL
                           AND ('signal:' || s.name) = ANY(:waiting_for)) THEN :now
            WHEN EXISTS (SELECT 1 FROM {p}runs c
                         WHERE c.id IN (SELECT substr(w, 7) FROM unnest(:waiting_for) AS w
                                        WHERE w LIKE 'child:%')
                           AND c.status IN ('completed', 'failed', 'cancelled')) THEN :now
            WHEN EXISTS (SELECT 1 FROM {p}requests q
                         WHERE q.run_id = :run_id AND q.consumed_seq IS NULL
                           AND ('request:' || q.name) = ANY(:waiting_for)) THEN :now
            WHEN EXISTS (SELECT 1 FROM {p}callbacks b
                         WHERE b.run_id = :run_id AND b.completed_at IS NOT NULL
                           AND ('callback:' || b.seq) = ANY(:waiting_for)) THEN :now
            -- a semaphore it waits for freed up while it was parking: the park took the
            -- limit's lock first (park_limits), so a release that committed before is seen
            -- here and one that comes later finds the run parked (flow.sql, wake_waiters)
            WHEN EXISTS (SELECT 1 FROM {p}limits l
                         WHERE l.name IN (SELECT substr(w, 7) FROM unnest(:waiting_for) AS w
                                          WHERE w LIKE 'limit:%')
                           AND l.concurrency IS NOT NULL
                           AND (SELECT count(*) FROM {p}limit_holds h JOIN {p}runs x
                                ON x.id = h.run_id AND x.epoch = h.epoch
                                   AND x.status = 'running'
                                WHERE h.name = l.name) < l.concurrency) THEN :now
            ELSE :wake_at::float8 END
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    RETURNING wake_at, queue
), note AS (
    SELECT pg_notify(:channel, 'park') FROM parked
    WHERE parked.wake_at <= :now OR parked.queue IS NOT NULL
)
SELECT (SELECT count(*) FROM parked) AS parked, (SELECT count(*) FROM note) AS notified

-- name: send_signal
-- Buffer a signal and wake the run if it is parked waiting for it, in one statement. `run`
-- locks the run's row unconditionally: a park in progress makes this wait, and the locking read
-- then returns the parked row, so the wake-up decision below sees it; a park that comes later
-- sees this signal (see park_lock). A finished run gets nothing: its status is returned.
WITH run AS (
    SELECT id, status, waiting_for FROM {p}runs WHERE id = :run_id FOR UPDATE
), ins AS (
    INSERT INTO {p}signals (run_id, name, payload, idempotency_key, sent_at)
    SELECT run.id, :name, :payload, :key, :now::float8 FROM run
    WHERE run.status NOT IN ('completed', 'failed', 'cancelled')
    ON CONFLICT (run_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
), woken AS (
    UPDATE {p}runs r SET wake_at = :now
    FROM run
    WHERE r.id = run.id AND run.status = 'waiting'
      AND ('signal:' || :name) = ANY(run.waiting_for)
      AND EXISTS (SELECT 1 FROM ins)
    RETURNING r.id
), note AS (
    -- Also when the run is held in memory by a worker (running): that worker re-checks.
    SELECT pg_notify(:channel, 'signal') FROM ins
)
SELECT run.status, (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM woken) AS woken, (SELECT count(*) FROM note) AS notified
FROM run

-- name: consume_signal
-- Take the oldest unconsumed signal :name and journal its payload at :seq, in one statement
-- (fenced: `own` share-locks the run's row at our epoch). With :retry (the first attempt's
-- acknowledgement was lost) a signal already consumed at :seq is returned again instead of
-- taking the next one, so the retry is idempotent.
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), prev AS (
    SELECT s.id, s.payload FROM {p}signals s
    WHERE :retry::boolean AND s.run_id = :run_id AND s.consumed_seq = :seq::int
      AND s.name = :name AND EXISTS (SELECT 1 FROM own)
    LIMIT 1
), sig AS (
    SELECT s.id, s.payload FROM {p}signals s
    WHERE s.run_id = :run_id AND s.name = :name AND s.consumed_seq IS NULL
      AND EXISTS (SELECT 1 FROM own) AND NOT EXISTS (SELECT 1 FROM prev)
    ORDER BY s.id
    LIMIT 1
    FOR UPDATE OF s
), mark AS (
    UPDATE {p}signals s SET consumed_seq = :seq
    FROM sig WHERE s.id = sig.id AND s.consumed_seq IS NULL
    RETURNING sig.payload
), picked AS (
    SELECT payload FROM mark UNION ALL SELECT payload FROM prev
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, finished_at)
    SELECT :run_id, :seq, 'signal', :name, 'completed', 1, picked.payload, :now::float8
    FROM picked
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = NULL,
        due_at = NULL, finished_at = excluded.finished_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT payload FROM picked LIMIT 1) AS payload,
       (SELECT count(*) FROM put) AS written

-- name: start_child
-- Journal the parent's entry and create the child (if its id is new), atomically and fenced.
WITH own AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                           started_at, finished_at)
    SELECT :run_id, :seq::int, :kind, :name, :entry_status, :attempts::int, :output, :error,
           :due_at::float8, :started_at::float8, :finished_at::float8
    FROM own
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        due_at = excluded.due_at, finished_at = excluded.finished_at
    RETURNING 1
), child AS (
    INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at,
                         parent_id, parent_seq, deadline, created_at, updated_at, trace_context)
    SELECT :child_id, :child_workflow, :child_version, :child_wf_key, 'pending', :child_input,
           0, :child_now::float8, :child_parent_id, :child_parent_seq::int,
           :child_deadline::float8, :child_now, :child_now, :child_trace_context::text
    FROM own
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), note AS (
    SELECT pg_notify(:channel, 'run') FROM child
)
SELECT (SELECT count(*) FROM own) AS owned, (SELECT count(*) FROM note) AS notified

-- name: cancel_lock
-- Step 1 of a cancel: lock the root run's row, so that the tree read by request_cancel (a new
-- statement) includes every child whose creation committed before (a start_child holds a
-- share lock on its parent's row until it commits), and so that a park of the root
-- serializes with the cancel.
SELECT 1 FROM {p}runs WHERE id = :run_id FOR UPDATE

-- name: request_cancel
-- Step 2: the run and all its unfinished descendants; parked ones wake now to see it. A park
-- of a descendant that is in progress makes this UPDATE wait; it then re-checks the newest row
-- (status 'waiting') and wakes it. A park that comes later reads cancel_requested on its own
-- row (park_run). Rows are locked in id order.
WITH RECURSIVE tree(id) AS (
    SELECT :run_id::text
    UNION
    SELECT r.id FROM {p}runs r JOIN tree t ON r.parent_id = t.id
), locked AS (
    SELECT r.id FROM {p}runs r
    WHERE r.id IN (SELECT id FROM tree)
      AND r.status NOT IN ('completed', 'failed', 'cancelled')
    ORDER BY r.id
    FOR UPDATE
), flagged AS (
    UPDATE {p}runs r
    SET cancel_requested = true, updated_at = :now::float8,
        wake_at = CASE WHEN r.status = 'waiting' THEN :now ELSE r.wake_at END
    FROM locked
    WHERE r.id = locked.id AND r.status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING r.id
), note AS (
    SELECT pg_notify(:channel, 'cancel') FROM flagged
)
SELECT id FROM flagged WHERE (SELECT count(*) FROM note) >= 0

-- name: cancel_flags
SELECT id FROM {p}runs WHERE owner = :worker AND status = 'running' AND cancel_requested

-- name: heartbeat
-- Renew every lease of the worker (and its registration) in one statement; rows in id order.
-- (A data-modifying CTE such as `reg` always runs, referenced or not.)
WITH reg AS (
    INSERT INTO {p}workers (id, host, pid, pid_start, started_at, heartbeat_at, serves, labels)
    VALUES (:worker, :host, :pid::int, :pid_start, :now::float8, :now, :serves::text[],
            :labels::text[])
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, serves = excluded.serves
), mine AS (
    SELECT id FROM {p}runs WHERE owner = :worker AND status = 'running'
      AND id = ANY(:runs::text[])  -- only runs still driven: an abandoned one must lapse
    ORDER BY id
    FOR UPDATE
)
UPDATE {p}runs r SET lease_until = :lease_until::float8
FROM mine
WHERE r.id = mine.id
RETURNING r.id, r.epoch

-- name: upsert_worker
INSERT INTO {p}workers (id, host, pid, pid_start, started_at, heartbeat_at, serves, labels)
VALUES (:id, :host, :pid::int, :pid_start, :now::float8, :now, :serves::text[], :labels::text[])
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, serves = excluded.serves,
                               labels = excluded.labels

-- name: delete_worker
DELETE FROM {p}workers WHERE id = :id

-- name: workers_liveness
-- Every other registered worker, and whether its session advisory lock is held right now (by
-- a live connection to this database). pg_locks shows a bigint advisory key as classid (high
-- 32 bits) and objid (low 32 bits) with objsubid 1. `uptime` (seconds since the server
-- started) tells the adapter whether live workers may still be reconnecting after a restart.
WITH held AS MATERIALIZED (
    SELECT classid::bigint AS hi, objid::bigint AS lo FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
), workers AS (
    SELECT id, host, pid, pid_start, hashtextextended(:namespace || id, 0) AS k
    FROM {p}workers WHERE id <> :me
)
SELECT w.id, w.host, w.pid, w.pid_start,
       EXISTS (SELECT 1 FROM held
               WHERE held.hi = ((w.k >> 32) & 4294967295) AND held.lo = (w.k & 4294967295))
           AS locked,
       extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())::float8 AS uptime
FROM workers w

-- name: lock_worker
SELECT pg_try_advisory_lock(hashtextextended(:namespace || :worker, 0))

-- name: unlock_worker
SELECT pg_advisory_unlock(hashtextextended(:namespace || :worker, 0))

-- name: expire_worker
-- The worker is dead: its runs become claimable now rather than when their leases lapse.
WITH mine AS (
    SELECT id FROM {p}runs WHERE owner = :worker AND status = 'running'
    ORDER BY id
    FOR UPDATE
), freed AS (
    UPDATE {p}runs r SET lease_until = 0 FROM mine WHERE r.id = mine.id RETURNING r.id
), forget AS (
    DELETE FROM {p}workers WHERE id = :worker RETURNING 1
), note AS (
    SELECT pg_notify(:channel, 'expired') FROM (SELECT 1 FROM freed LIMIT 1) AS any_
)
SELECT (SELECT count(*) FROM freed) AS freed, (SELECT count(*) FROM note) AS notified,
       (SELECT count(*) FROM forget) AS forgotten

-- name: admin_transition
-- Operator transitions (resume), one statement: record how the run ended (if it still has the
-- status the operator saw) as a resume, copy the superseded journal entries to the history and
-- delete them from the journal (every CTE reads the same snapshot, so the copy sees what the
-- delete removes), requeue the run in its new generation (:bump) and bump the epoch so that a
-- stale owner is fenced out.
WITH ended AS (
    SELECT id, generation, status, error, updated_at FROM {p}runs
    WHERE id = :run_id AND status = :from_status
    FOR UPDATE
), moved AS (
    UPDATE {p}runs r
    SET status = :status, owner = NULL, lease_until = NULL, wake_at = :now::float8,
        error = NULL, epoch = r.epoch + 1, updated_at = :now,
        generation = r.generation + :bump::int
    FROM ended
    WHERE r.id = ended.id
    RETURNING ended.id, ended.generation, ended.status, ended.error, ended.updated_at
), resume AS (
    INSERT INTO {p}resumes (run_id, generation, status, error, ended_at, resumed_at)
    SELECT id, generation, status, error, updated_at, :now FROM moved
    RETURNING id
), kept AS (
    INSERT INTO {p}journal_history (resume_id, run_id, seq, kind, name, status, attempts,
                                    output, error, due_at, started_at, finished_at)
    SELECT resume.id, j.run_id, j.seq, j.kind, j.name, j.status, j.attempts, j.output, j.error,
           j.due_at, j.started_at, j.finished_at
    FROM {p}journal j, resume
    WHERE j.run_id = :run_id AND j.seq = ANY(:seqs::int[])
    RETURNING 1
), dropped AS (
    DELETE FROM {p}journal
    WHERE run_id = (SELECT id FROM moved) AND seq = ANY(:seqs::int[])
    RETURNING 1
), note AS (
    SELECT pg_notify(:channel, 'admin') FROM moved
)
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM kept) AS kept,
       (SELECT count(*) FROM dropped) AS dropped, (SELECT count(*) FROM note) AS notified

-- name: admin_applied
SELECT 1 FROM {p}runs WHERE id = :run_id AND status = :status AND updated_at = :now::float8
  AND owner IS NULL

-- name: database_time
-- The reference clock of the fleet: each worker measures its own clock's offset against it.
SELECT extract(epoch FROM clock_timestamp())::float8

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

-- name: continue_run
-- Continue-as-new, one statement (fenced: `own` locks the run's row at our epoch): keep the
-- ending incarnation (its arguments and version) as a 'continued' row of the history with its
-- whole journal, empty the journal (every CTE reads the same snapshot, so the copy sees what
-- the delete removes), forget the consumed signals (their seqs restart; their payloads stay in
-- the archived journal), and requeue the run with its new arguments in a new generation.
WITH own AS (
    SELECT id, generation, workflow, version, input FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR UPDATE
), kept AS (
    INSERT INTO {p}resumes (run_id, generation, status, error, ended_at, resumed_at, input,
                            version)
    SELECT id, generation, 'continued', NULL, :now::float8, :now, input, version FROM own
    RETURNING id
), archived AS (
    INSERT INTO {p}journal_history (resume_id, run_id, seq, kind, name, status, attempts,
                                    output, error, due_at, started_at, finished_at)
    SELECT kept.id, j.run_id, j.seq, j.kind, j.name, j.status, j.attempts, j.output, j.error,
           j.due_at, j.started_at, j.finished_at
    FROM {p}journal j, kept
    WHERE j.run_id = :run_id
    RETURNING 1
), cleared AS (
    DELETE FROM {p}journal WHERE run_id = (SELECT id FROM own) RETURNING 1
), forgotten AS (
    DELETE FROM {p}signals
    WHERE run_id = (SELECT id FROM own) AND consumed_seq IS NOT NULL
    RETURNING 1
), moved AS (
    UPDATE {p}runs r
    SET status = CASE WHEN r.pause_requested THEN 'paused' ELSE 'pending' END, owner = NULL,
        lease_until = NULL, wake_at = :now, error = NULL, output = NULL, waiting_for = NULL,
        input = :input, version = :version, wf_key = own.workflow || chr(31) || :version,
        epoch = r.epoch + 1, generation = r.generation + 1, incarnation = r.incarnation + 1,
        updated_at = :now
    FROM own
    WHERE r.id = own.id
    RETURNING r.id
), note AS (
    SELECT pg_notify(:channel, 'run') FROM moved
)
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM archived) AS archived,
       (SELECT count(*) FROM cleared) AS cleared, (SELECT count(*) FROM forgotten) AS forgotten,
       (SELECT count(*) FROM note) AS notified

-- name: continue_applied
-- After a lost acknowledgement: did our continue-as-new commit? It bumped the epoch past ours
-- and released the run at exactly this time stamp.
SELECT 1 FROM {p}runs
WHERE id = :run_id AND epoch = :epoch::bigint + 1 AND owner IS NULL AND updated_at = :now::float8

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

-- name: fork_run
-- A fork, one statement: a new run with the source's workflow, version and arguments, and the
-- source's journal entries before the fork point. Nothing is written if the id exists. Its
-- epoch starts at 1, not 0: the runner reads no journal on a run's first claim (epoch 1).
WITH src AS (
    SELECT id, workflow, version, wf_key, input FROM {p}runs WHERE id = :source
), ins AS (
    INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at,
                         created_at, updated_at, forked_from, forked_seq)
    SELECT :id, workflow, version, wf_key, 'pending', input, 1, :now::float8, :now, :now, id,
           :upto::int
    FROM src
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), copied AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                            started_at, finished_at)
    SELECT ins.id, j.seq, j.kind, j.name, j.status, j.attempts, j.output, j.error, j.due_at,
           j.started_at, j.finished_at
    FROM {p}journal j, ins
    WHERE j.run_id = :source AND j.seq < :upto
    RETURNING 1
), note AS (
    SELECT pg_notify(:channel, 'run') FROM ins
)
SELECT (SELECT count(*) FROM ins) AS created, (SELECT count(*) FROM copied) AS copied,
       (SELECT count(*) FROM note) AS notified

-- name: request_pause
-- A pending or parked run is paused at once; a running one is flagged (its worker is told) and
-- parks as paused at its next durable await (see park_run). The row lock serializes this with
-- a park in progress.
WITH upd AS (
    UPDATE {p}runs r
    SET pause_requested = true, updated_at = :now::float8,
        status = CASE WHEN r.status IN ('pending', 'waiting') THEN 'paused' ELSE r.status END
    WHERE r.id = :run_id AND r.status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING r.status
), note AS (
    SELECT pg_notify(:channel, 'pause') FROM upd
)
SELECT status FROM upd WHERE (SELECT count(*) FROM note) >= 0

-- name: unpause
-- Resume a paused run (claimable now), or withdraw a pause not yet reached.
WITH upd AS (
    UPDATE {p}runs
    SET pause_requested = false, updated_at = :now::float8,
        status = CASE WHEN status = 'paused' THEN 'pending' ELSE status END,
        wake_at = CASE WHEN status = 'paused' THEN :now ELSE wake_at END
    WHERE id = :run_id AND (pause_requested OR status = 'paused')
    RETURNING status
), note AS (
    SELECT pg_notify(:channel, 'run') FROM upd
)
SELECT status FROM upd WHERE (SELECT count(*) FROM note) >= 0

-- name: pause_flags
SELECT id FROM {p}runs WHERE owner = :worker AND status = 'running' AND pause_requested

-- name: stranded_runs
-- Unfinished runs whose workflow key no live worker (heartbeat since :live_after) serves.
SELECT id, workflow, version, status, input, output, error, epoch, owner, lease_until, wake_at,
       parent_id, parent_seq, deadline, cancel_requested, created_at, updated_at, generation,
       incarnation, pause_requested, forked_from, forked_seq
FROM {p}runs r
WHERE r.status NOT IN ('completed', 'failed', 'cancelled')
  AND (:workflow::text IS NULL OR r.workflow = :workflow)
  AND NOT EXISTS (SELECT 1 FROM {p}workers w
                  WHERE w.heartbeat_at >= :live_after::float8 AND r.wf_key = ANY(w.serves))
ORDER BY r.created_at DESC, r.id
LIMIT :limit

-- name: stranded_summary
SELECT workflow, version, count(*) FROM {p}runs r
WHERE r.status NOT IN ('completed', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM {p}workers w
                  WHERE w.heartbeat_at >= :live_after::float8 AND r.wf_key = ANY(w.serves))
GROUP BY workflow, version
ORDER BY workflow, version

-- name: served_keys
SELECT DISTINCT k FROM {p}workers w, unnest(w.serves) AS k
WHERE w.heartbeat_at >= :live_after::float8
ORDER BY k

-- name: claim_run
-- One run by id (a host driving the run a queue message named), taken exactly when claim would
-- take it: runnable now, or running under a lapsed lease. Nothing when another worker holds it
-- or it has ended, so a second delivery of the same message drives nothing. FOR UPDATE without
-- SKIP LOCKED: a row locked for a moment (a signal, a heartbeat) is waited for, not skipped, and
-- the condition is checked again on the row as that transaction left it. A queued or routed
-- run is not taken by id: its queue's limits (or its selector) decide, in its line.
WITH picked AS (
    SELECT id, status = 'running' AS recovered FROM {p}runs
    WHERE id = :run_id AND wf_key = ANY(:keys::text[])
      AND ((status IN ('pending', 'waiting') AND wake_at IS NOT NULL
            AND wake_at <= :now::float8 AND queue IS NULL AND requires IS NULL)
           OR (status = 'running' AND lease_until < :now::float8 AND requires IS NULL))
    FOR UPDATE
)
UPDATE {p}runs r
SET status = 'running', owner = :worker, epoch = r.epoch + 1, error = NULL,
    lease_until = :lease_until::float8, updated_at = :now::float8
FROM picked
WHERE r.id = picked.id
RETURNING r.id, r.workflow, r.version, r.input, r.epoch, r.parent_id, r.deadline,
          r.cancel_requested, r.created_at, picked.recovered, r.generation, r.wake_at,
          r.trace_context, r.pause_requested

-- name: claim_run_give_back
-- A claim_run whose outcome is unknown (the connection dropped before the reply): hand the run
-- back if that claim took it, as claim_give_back does.
UPDATE {p}runs SET lease_until = 0
WHERE id = :run_id AND owner = :worker AND status = 'running' AND updated_at = :now::float8

-- name: count_due
-- Parked runs whose wake-up time has come (a timer, a retry back-off or a timeout, or a signal
-- or a child's end that woke them): claimable now.
SELECT count(*) FROM {p}runs
WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= :now::float8
  AND wf_key = ANY(:keys::text[])
