-- Flow control on PostgreSQL: queues, limits, routing, delay and debounce (the tables are in
-- 0018_flow.sql; the statements mirror sqlite/flow.sql).
--
-- Exact limits under READ COMMITTED. A statement counts what was committed when it started, so
-- a count is only exact if nobody can add to it until we commit: every claim from a queue first
-- locks the queue's row (flow_lock_queues), and every take or release of a limit first locks
-- the limit's row (lock_limits), each in a statement of its own, so the counting statements
-- that follow take their snapshots after the lock is ours. Releasing a slot needs no lock (a
-- count that misses a release is only conservative). Lock order: queue and limit rows (by
-- name), then runs rows; a park that waits on a semaphore takes the limit's lock before its
-- run's row too (park_limits), so no release can slip between its check and its park.

-- name: define_queue
INSERT INTO {p}queues (name, concurrency, per_worker, per_key, rate_count, rate_per, weights,
                       defined_at)
VALUES (:name, :concurrency::int, :per_worker::int, :per_key::int, :rate_count::int,
        :rate_per::float8, :weights, :now::float8)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency, per_worker = excluded.per_worker,
    per_key = excluded.per_key, rate_count = excluded.rate_count,
    rate_per = excluded.rate_per, weights = excluded.weights, defined_at = excluded.defined_at

-- name: define_limit
INSERT INTO {p}limits (name, concurrency, rate_count, rate_per, defined_at)
VALUES (:name, :concurrency::int, :rate_count::int, :rate_per::float8, :now::float8)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency, rate_count = excluded.rate_count,
    rate_per = excluded.rate_per, defined_at = excluded.defined_at

-- name: debounce_run
-- Starts of one (workflow, key) within the window coalesce: the run still gathering them takes
-- the latest arguments and options and waits a full window again. Once it is due (or taken) it
-- leaves runs_debounce, and the next start makes a new run.
WITH slot AS (
    INSERT INTO {p}queue_keys AS k (queue, key, finish)
    SELECT :queue::text, coalesce(:key::text, ''),
           coalesce((SELECT vclock FROM {p}queues WHERE name = :queue), 0) + :share::float8
    WHERE :queue IS NOT NULL
    ON CONFLICT (queue, key) DO UPDATE SET
        finish = greatest(k.finish, coalesce((SELECT vclock FROM {p}queues
                                              WHERE name = :queue), 0)) + :share
    RETURNING finish - :share AS vtime
), ins AS (
    INSERT INTO {p}runs AS r (id, workflow, version, wf_key, status, input, epoch, wake_at,
                              error, deadline, created_at, updated_at, queue, partition_key,
                              priority, vtime, requires, debounce, trace_context, tags)
    VALUES (:id, :workflow, :version, :wf_key, 'waiting', :input, 0, :wake_at::float8,
            :reason, :deadline::float8, :now::float8, :now, :queue, :key, :priority::int,
            coalesce((SELECT vtime FROM slot), :now), :requires::text[], true,
            :trace_context::text, :tags)
    ON CONFLICT (workflow, partition_key) WHERE debounce AND status = 'waiting' AND epoch = 0
    DO UPDATE SET input = excluded.input, wake_at = excluded.wake_at, error = excluded.error,
        deadline = excluded.deadline, priority = excluded.priority,
        requires = excluded.requires, updated_at = excluded.updated_at
    RETURNING r.id
), tagged AS (
    -- a new run's tags (a coalesced start keeps the first start's tags)
    INSERT INTO {p}tags (run_id, key, value, created_at)
    SELECT ins.id, t.key, t.value, :now FROM ins,
           unnest(:tag_keys::text[], :tag_values::text[]) AS t(key, value)
    WHERE ins.id = :id
)
SELECT id FROM ins

-- name: flow_lock_queues
-- Step 1 of a claim from queues: due queued and routed runs enter their line (this worker's
-- queues, the routed runs its labels admit; oldest due first; a NOTIFY tells the other workers
-- serving them), and the queues' rows are locked (by name), so that the counts of the
-- statements that follow stay true until we commit. Returned with each queue: its rate and the
-- starts in its window (so the adapter asks when the window has room only if it is full), and
-- the next due time of a run not in a line yet. (A worker without queues gets no row: it asks
-- flow_next_wake instead.) For the rest of the transaction, no
-- bitmap scans: a line must be read in its index's order and the read stopped at the limit;
-- a bitmap scan would read (and sort) the whole line, however long, whenever the planner
-- underestimates it (status, queue and due time are correlated, which it cannot know).
WITH due AS (
    SELECT id FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
      AND (queue IS NOT NULL OR requires IS NOT NULL)
      AND wake_at <= :now::float8 AND wf_key = ANY(:keys::text[])
      AND (queue = ANY(:queues::text[]) OR (queue IS NULL AND requires <@ :caps::text[]))
    ORDER BY wake_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE {p}runs r SET status = 'pending', wake_at = NULL, error = NULL, updated_at = :now
    FROM due WHERE r.id = due.id
    RETURNING r.id
), note AS (
    SELECT pg_notify(:channel, 'line') FROM (SELECT 1 FROM moved LIMIT 1) AS any_
)
SELECT set_config('enable_bitmapscan', 'off', true), q.name, q.rate_count, q.rate_per,
       (SELECT count(*) FROM {p}rate_grants g
        WHERE g.scope = 'queue:' || q.name AND g.at > :now - q.rate_per) AS used,
       -- when the next queued or routed run falls due (those due now are moving into lines)
       (SELECT min(wake_at) FROM {p}runs
        WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
          AND (queue IS NOT NULL OR requires IS NOT NULL)
          AND wake_at > :now AND wf_key = ANY(:keys)
          AND (queue = ANY(:queues) OR (queue IS NULL AND requires <@ :caps))) AS next_due,
       (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM note) AS notified
FROM {p}queues q
WHERE q.name = ANY(:queues) ORDER BY q.name FOR UPDATE OF q

-- name: queue_claim
-- Step 3, per queue: take the runs this worker may start now, in line order (lowest priority,
-- then place), within the queue's limits: running runs (cluster-wide and this worker's),
-- running runs per key, and starts in the rate window (a run that ran before and waited is
-- not a new start). :scan bounds the candidates read past runs of keys at their limit. The
-- starts enter the rate window, the queue's virtual clock moves to the last place started,
-- and grants past the window are dropped.
WITH q AS (
    SELECT concurrency, per_worker, per_key, rate_count, rate_per
    FROM {p}queues WHERE name = :queue
), busy AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE owner = :worker) AS mine FROM {p}runs
    WHERE queue = :queue AND status = 'running'
), win AS (
    SELECT count(*) AS n FROM {p}rate_grants
    WHERE scope = :scope AND at > :now::float8 - (SELECT rate_per FROM q)
), room AS (
    SELECT greatest(0, least(:limit::int, coalesce(q.concurrency - busy.n, :limit),
                             coalesce(q.per_worker - busy.mine, :limit))) AS slots,
           coalesce(q.rate_count - win.n, :limit) AS starts, q.per_key AS per_key
    FROM q, busy, win
), cand AS (
    SELECT id, partition_key, priority, vtime, epoch FROM {p}runs
    WHERE queue = :queue AND status = 'pending'
      AND (queue IS NOT NULL OR requires IS NOT NULL)
      AND wf_key = ANY(:keys::text[])
      AND (requires IS NULL OR requires <@ :caps::text[])
    ORDER BY priority, vtime
    LIMIT :scan::int
    FOR UPDATE SKIP LOCKED
), keyed AS (
    SELECT c.*, row_number() OVER (PARTITION BY partition_key ORDER BY priority, vtime)
           AS key_rank
    FROM cand c
), eligible AS (
    SELECT k.* FROM keyed k, room
    WHERE room.per_key IS NULL OR k.partition_key IS NULL
       OR k.key_rank + (SELECT count(*) FROM {p}runs x
                        WHERE x.queue = :queue AND x.partition_key = k.partition_key
                          AND x.status = 'running') <= room.per_key
), numbered AS (
    SELECT e.*, sum(CASE WHEN e.epoch = 0 THEN 1 ELSE 0 END)
                    OVER (ORDER BY priority, vtime ROWS UNBOUNDED PRECEDING) AS start_rank
    FROM eligible e
), picked AS (
    SELECT n.id, n.vtime, n.epoch = 0 AS fresh FROM numbered n, room
    WHERE n.epoch > 0 OR n.start_rank <= room.starts
    ORDER BY n.priority, n.vtime
    LIMIT coalesce((SELECT slots FROM room), 0)
), taken AS (
    UPDATE {p}runs r
    SET status = 'running', owner = :worker, epoch = r.epoch + 1, error = NULL,
        lease_until = :lease_until::float8, updated_at = :now
    FROM picked
    WHERE r.id = picked.id
    RETURNING r.id, r.workflow, r.version, r.input, r.epoch, r.parent_id, r.deadline,
              r.cancel_requested, r.created_at, false AS recovered, r.generation,
              NULL::float8 AS wake_at, r.trace_context, r.pause_requested
), grants AS (
    INSERT INTO {p}rate_grants (scope, at, run_id)
    SELECT :scope, :now, id FROM picked
    WHERE fresh AND (SELECT rate_count FROM q) IS NOT NULL
), clock AS (
    UPDATE {p}queues SET vclock = greatest(vclock, (SELECT max(vtime) FROM picked))
    WHERE name = :queue AND EXISTS (SELECT 1 FROM picked)
), prune AS (
    DELETE FROM {p}rate_grants
    WHERE scope = :scope AND at <= :now - greatest((SELECT rate_per FROM q), :keep::float8)
)
SELECT * FROM taken

-- name: routed_claim
-- Step 3 for routed runs without a queue: those this worker's labels admit, in line order.
WITH cand AS (
    SELECT id FROM {p}runs
    WHERE queue IS NULL AND requires IS NOT NULL AND status = 'pending'
      AND (queue IS NOT NULL OR requires IS NOT NULL)
      AND wf_key = ANY(:keys::text[]) AND requires <@ :caps::text[]
    ORDER BY priority, vtime
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE {p}runs r
SET status = 'running', owner = :worker, epoch = r.epoch + 1, error = NULL,
    lease_until = :lease_until::float8, updated_at = :now::float8
FROM cand
WHERE r.id = cand.id
RETURNING r.id, r.workflow, r.version, r.input, r.epoch, r.parent_id, r.deadline,
          r.cancel_requested, r.created_at, false AS recovered, r.generation,
          NULL::float8 AS wake_at, r.trace_context, r.pause_requested

-- name: rate_next
-- When the window of :scope next has room: the grant that must leave it first, plus the window.
SELECT at + :per::float8 FROM {p}rate_grants
WHERE scope = :scope AND at > :now::float8 - :per
ORDER BY at LIMIT 1 OFFSET :k::int

-- name: rate_used
SELECT count(*) FROM {p}rate_grants WHERE scope = :scope AND at > :now::float8 - :per::float8

-- name: flow_next_wake
-- The next due time of a queued or routed run this worker could take (it enters its line then).
SELECT min(wake_at) FROM {p}runs
WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
  AND (queue IS NOT NULL OR requires IS NOT NULL)
  AND wf_key = ANY(:keys::text[])
  AND (queue = ANY(:queues::text[]) OR (queue IS NULL AND requires <@ :caps::text[]))

-- name: lock_limits
-- Step 1 of a take or a release: lock the limits' rows (by name) and read them.
SELECT name, concurrency, rate_count, rate_per FROM {p}limits
WHERE name = ANY(:names::text[]) ORDER BY name FOR UPDATE

-- name: park_limits
-- Before a park that waits on limits (ahead of park_lock): share-lock their rows, so that a
-- release either committed before this park checks, or waits until the run is parked.
SELECT name FROM {p}limits WHERE name = ANY(:names::text[]) ORDER BY name FOR SHARE

-- name: holds_in_use
-- Slots held: a hold counts while its run is running at the epoch that took it.
SELECT count(*) FROM {p}limit_holds h JOIN {p}runs r
    ON r.id = h.run_id AND r.epoch = h.epoch AND r.status = 'running'
WHERE h.name = :name

-- name: owns_run
SELECT 1 FROM {p}runs WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
  AND status = 'running'
FOR SHARE

-- name: take_hold
INSERT INTO {p}limit_holds (name, run_id, seq, epoch, taken_at)
VALUES (:name, :run_id, :seq::int, :epoch::bigint, :now::float8)
ON CONFLICT (name, run_id, seq) DO UPDATE SET epoch = excluded.epoch,
    taken_at = excluded.taken_at

-- name: take_grant
INSERT INTO {p}rate_grants (scope, at, run_id) VALUES (:scope, :now::float8, :run_id)

-- name: prune_grants
DELETE FROM {p}rate_grants WHERE scope = :scope AND at <= :before::float8

-- name: drop_waiter
DELETE FROM {p}limit_waiters WHERE run_id = :run_id AND name = :name

-- name: add_waiter
INSERT INTO {p}limit_waiters (name, run_id, since) VALUES (:name, :run_id, :now::float8)
ON CONFLICT (name, run_id) DO NOTHING

-- name: waiters_ahead
SELECT count(*) FROM {p}limit_waiters w
WHERE w.name = :name
  AND (w.since, w.id) < (SELECT since, id FROM {p}limit_waiters
                          WHERE name = :name AND run_id = :run_id)

-- name: release_holds
-- The holds an attempt (:seq) or a recovered run's earlier epochs (:seq NULL) leave behind.
DELETE FROM {p}limit_holds
WHERE run_id = :run_id AND (seq = :seq::int OR (:seq IS NULL AND epoch < :epoch::bigint))
RETURNING name

-- name: wake_waiters
-- Wake the oldest runs parked on :name, as many as slots are free (one already woken and not
-- yet claimed is not woken twice); rows locked in id order.
WITH chosen AS (
    SELECT w.run_id FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
    WHERE w.name = :name AND r.status = 'waiting'
      AND (r.wake_at IS NULL OR r.wake_at > :now::float8)
      AND ('limit:' || :name) = ANY(r.waiting_for)
    ORDER BY w.since, w.id
    LIMIT :free::int
), locked AS (
    SELECT r.id FROM {p}runs r WHERE r.id IN (SELECT run_id FROM chosen)
    ORDER BY r.id FOR UPDATE
), woken AS (
    UPDATE {p}runs r SET wake_at = :now FROM locked
    WHERE r.id = locked.id AND r.status = 'waiting'
    RETURNING r.id
), note AS (
    SELECT pg_notify(:channel, 'limit') FROM (SELECT 1 FROM woken LIMIT 1) AS any_
)
SELECT (SELECT count(*) FROM woken) AS woken, (SELECT count(*) FROM note) AS notified

-- name: forget_waiters
DELETE FROM {p}limit_waiters
WHERE name = :name AND run_id IN (SELECT id FROM {p}runs
                                  WHERE status IN ('completed', 'failed', 'cancelled'))

-- name: queue_stats
SELECT q.name, q.concurrency, q.per_worker, q.per_key, q.rate_count, q.rate_per,
       (SELECT count(*) FROM {p}runs r WHERE r.queue = q.name AND r.status = 'pending'
          AND (r.queue IS NOT NULL OR r.requires IS NOT NULL)),
       (SELECT count(*) FROM {p}runs r WHERE r.queue = q.name AND r.status = 'waiting'
          AND r.queue IS NOT NULL),
       (SELECT count(*) FROM {p}runs r WHERE r.queue = q.name AND r.status = 'running'
          AND r.queue IS NOT NULL),
       (SELECT count(*) FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
        WHERE r.queue = q.name AND r.status = 'waiting'),
       (SELECT min(r.updated_at) FROM {p}runs r WHERE r.queue = q.name
          AND r.status = 'pending' AND (r.queue IS NOT NULL OR r.requires IS NOT NULL)),
       (SELECT count(*) FROM {p}runs r WHERE r.queue = q.name AND r.status = 'pending'
          AND (r.queue IS NOT NULL OR r.requires IS NOT NULL) AND r.requires IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {p}workers w
                          WHERE w.heartbeat_at >= :live_since::float8
                            AND r.requires <@ w.labels))
FROM {p}queues q ORDER BY q.name

-- name: routed_stats
SELECT count(*), min(r.updated_at),
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {p}workers w
                                          WHERE w.heartbeat_at >= :live_since::float8
                                            AND r.requires <@ w.labels))
FROM {p}runs r
WHERE r.queue IS NULL AND r.requires IS NOT NULL AND r.status = 'pending'
  AND (r.queue IS NOT NULL OR r.requires IS NOT NULL)

-- name: limit_stats
SELECT l.name, l.concurrency, l.rate_count, l.rate_per,
       (SELECT count(*) FROM {p}limit_holds h JOIN {p}runs r
            ON r.id = h.run_id AND r.epoch = h.epoch AND r.status = 'running'
        WHERE h.name = l.name),
       (SELECT count(*) FROM {p}rate_grants g
        WHERE g.scope = 'limit:' || l.name AND g.at > :now::float8 - l.rate_per),
       (SELECT count(*) FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
        WHERE w.name = l.name AND r.status = 'waiting'),
       (SELECT min(w.since) FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
        WHERE w.name = l.name AND r.status = 'waiting')
FROM {p}limits l ORDER BY l.name

-- name: routable
SELECT EXISTS (SELECT 1 FROM {p}workers w WHERE w.heartbeat_at >= :live_since::float8
               AND :requires::text[] <@ w.labels)

-- name: holds_of_run
SELECT name FROM {p}limit_holds
WHERE run_id = :run_id AND (seq = :seq::int OR (:seq IS NULL AND epoch < :epoch::bigint))

-- name: cancel_unstarted
-- A cancelled run that never started and stands in (or waits to enter) a line ends at once,
-- cancelled: nothing ran, nothing is undone, and it must not wait for a slot to be told so.
-- (Children are never queued or routed: no parent waits for it.)
UPDATE {p}runs
SET status = 'cancelled', error = :error, wake_at = NULL, updated_at = :now::float8
WHERE id = :run_id AND epoch = 0 AND status IN ('pending', 'waiting')
  AND (queue IS NOT NULL OR requires IS NOT NULL) AND parent_id IS NULL
RETURNING id
