-- Flow control on SQLite: queues, limits, routing, delay and debounce (see 0018_flow.sql for
-- the tables). Every claim and every take runs in one write transaction on the connection
-- thread, and SQLite has one writer at a time: what a statement counts cannot change before
-- its transaction commits, so the limits hold exactly across processes.
--
-- A routing check "the worker's capabilities :caps (JSON array) offer every token of the
-- run's requires" is spelled NOT EXISTS (a token of requires not in :caps).

-- name: define_queue
INSERT INTO {p}queues (name, concurrency, per_worker, per_key, rate_count, rate_per, weights,
                       defined_at)
VALUES (:name, :concurrency, :per_worker, :per_key, :rate_count, :rate_per, :weights, :now)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency, per_worker = excluded.per_worker,
    per_key = excluded.per_key, rate_count = excluded.rate_count,
    rate_per = excluded.rate_per, weights = excluded.weights, defined_at = excluded.defined_at

-- name: define_limit
INSERT INTO {p}limits (name, concurrency, rate_count, rate_per, defined_at)
VALUES (:name, :concurrency, :rate_count, :rate_per, :now)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency, rate_count = excluded.rate_count,
    rate_per = excluded.rate_per, defined_at = excluded.defined_at

-- name: run_exists
SELECT 1 FROM {p}runs WHERE id = :id

-- name: queue_slot
-- Fair queueing: the new run of (queue, key) goes 1/weight after that key's previous one, and
-- no earlier than the queue's virtual clock (the place of the last run started), so a key
-- that was idle joins at the front of the current round instead of ahead of everyone.
INSERT INTO {p}queue_keys AS k (queue, key, finish)
VALUES (:queue, :key, coalesce((SELECT vclock FROM {p}queues WHERE name = :queue), 0) + :share)
ON CONFLICT (queue, key) DO UPDATE SET
    finish = max(k.finish, coalesce((SELECT vclock FROM {p}queues WHERE name = :queue), 0))
             + :share
RETURNING finish - :share

-- name: debounce_run
-- Starts of one (workflow, key) within the window coalesce: the run still gathering them takes
-- the latest arguments and options and waits a full window again.
INSERT INTO {p}runs (id, workflow, version, wf_key, status, input, epoch, wake_at, error,
                     parent_id, parent_seq, deadline, created_at, updated_at, queue,
                     partition_key, priority, vtime, requires, debounce, trace_context, tags)
VALUES (:id, :workflow, :version, :wf_key, 'waiting', :input, 0, :wake_at, :reason, NULL,
        NULL, :deadline, :now, :now, :queue, :key, :priority, :vtime, :requires, 1,
        :trace_context, :tags)
ON CONFLICT (workflow, partition_key) WHERE debounce = 1 AND status = 'waiting' AND epoch = 0
DO UPDATE SET input = excluded.input, wake_at = excluded.wake_at, error = excluded.error,
    deadline = excluded.deadline, priority = excluded.priority,
    requires = excluded.requires, updated_at = excluded.updated_at
RETURNING id

-- name: flow_promote
-- Due queued and routed runs enter their line (this worker's queues, the routed runs its
-- labels admit), oldest due first.
UPDATE {p}runs SET status = 'pending', wake_at = NULL, error = NULL, updated_at = :now
WHERE id IN (
    SELECT id FROM {p}runs
    WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
      AND (queue IS NOT NULL OR requires IS NOT NULL)
      AND wake_at <= :now AND wf_key IN (SELECT value FROM json_each(:keys))
      AND (queue IN (SELECT value FROM json_each(:queues))
           OR (queue IS NULL AND NOT EXISTS (
               SELECT 1 FROM json_each(requires) t
               WHERE t.value NOT IN (SELECT value FROM json_each(:caps)))))
    ORDER BY wake_at
    LIMIT 1000
)

-- name: queue_pick
-- Which runs of queue :queue this worker may start now, in line order: lowest priority first,
-- then by place (vtime). Limits: running runs of the queue (cluster-wide and this worker's),
-- running runs per key, and starts in the rate window (a run that ran before and waited is
-- not a new start). :scan bounds the candidates read past runs of keys at their limit.
WITH q AS (
    SELECT concurrency, per_worker, per_key, rate_count, rate_per
    FROM {p}queues WHERE name = :queue
), busy AS (
    SELECT count(*) AS n, coalesce(sum(owner = :worker), 0) AS mine FROM {p}runs
    WHERE queue = :queue AND status = 'running'
), win AS (
    SELECT count(*) AS n FROM {p}rate_grants
    WHERE scope = :scope AND at > :now - (SELECT rate_per FROM q)
), room AS (
    SELECT max(0, min(:limit, coalesce(q.concurrency - busy.n, :limit),
                      coalesce(q.per_worker - busy.mine, :limit))) AS slots,
           coalesce(q.rate_count - win.n, :limit) AS starts, q.per_key AS per_key
    FROM q, busy, win
), cand AS (
    SELECT id, partition_key, priority, vtime, epoch FROM {p}runs
    WHERE queue = :queue AND status = 'pending'
      AND (queue IS NOT NULL OR requires IS NOT NULL)
      AND wf_key IN (SELECT value FROM json_each(:keys))
      AND (requires IS NULL OR NOT EXISTS (
          SELECT 1 FROM json_each(requires) t
          WHERE t.value NOT IN (SELECT value FROM json_each(:caps))))
    ORDER BY priority, vtime
    LIMIT :scan
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
    SELECT e.*, sum(e.epoch = 0) OVER (ORDER BY priority, vtime ROWS UNBOUNDED PRECEDING)
           AS start_rank
    FROM eligible e
)
SELECT n.id FROM numbered n, room
WHERE n.epoch > 0 OR n.start_rank <= room.starts
ORDER BY n.priority, n.vtime
LIMIT coalesce((SELECT slots FROM room), 0)

-- name: routed_pick
-- Routed runs without a queue that this worker's labels admit, in line order.
SELECT id FROM {p}runs
WHERE queue IS NULL AND requires IS NOT NULL AND status = 'pending'
  AND (queue IS NOT NULL OR requires IS NOT NULL)
  AND wf_key IN (SELECT value FROM json_each(:keys))
  AND NOT EXISTS (SELECT 1 FROM json_each(requires) t
                  WHERE t.value NOT IN (SELECT value FROM json_each(:caps)))
ORDER BY priority, vtime
LIMIT :limit

-- name: line_take
UPDATE {p}runs
SET status = 'running', owner = :worker, epoch = epoch + 1, lease_until = :lease_until,
    updated_at = :now, error = NULL, claimed_from = status
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending'
RETURNING id, workflow, version, input, epoch, parent_id, deadline, cancel_requested,
          created_at, 0, generation, NULL, trace_context, pause_requested, vtime

-- name: queue_started
-- The starts just made enter the rate window; the queue's virtual clock moves to the place of
-- the last run started; grants past the window are dropped.
INSERT INTO {p}rate_grants (scope, at, run_id)
SELECT :scope, :now, value FROM json_each(:fresh)
WHERE (SELECT rate_count FROM {p}queues WHERE name = :queue) IS NOT NULL

-- name: queue_clock
UPDATE {p}queues SET vclock = max(vclock, :vtime) WHERE name = :queue

-- name: prune_grants
DELETE FROM {p}rate_grants WHERE scope = :scope AND at <= :before

-- name: prune_queue_grants
DELETE FROM {p}rate_grants
WHERE scope = :scope
  AND at <= :now - max(coalesce((SELECT rate_per FROM {p}queues WHERE name = :queue), 0), :keep)

-- name: rate_next
-- When the window of :scope next has room: the grant that must leave it first, plus the window.
SELECT at + :per FROM {p}rate_grants
WHERE scope = :scope AND at > :now - :per
ORDER BY at LIMIT 1 OFFSET :k

-- name: rate_used
SELECT count(*) FROM {p}rate_grants WHERE scope = :scope AND at > :now - :per

-- name: queue_rate_used
-- A queue's rate and the starts in its window now (no row: the queue has no rate).
SELECT q.rate_count, q.rate_per,
       (SELECT count(*) FROM {p}rate_grants
        WHERE scope = :scope AND at > :now - q.rate_per) AS used
FROM {p}queues q WHERE q.name = :queue AND q.rate_count IS NOT NULL

-- name: flow_next_wake
-- The next due time of a queued or routed run this worker could take (it enters its line then).
SELECT min(wake_at) FROM {p}runs
WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL
  AND (queue IS NOT NULL OR requires IS NOT NULL)
  AND wf_key IN (SELECT value FROM json_each(:keys))
  AND (queue IN (SELECT value FROM json_each(:queues))
       OR (queue IS NULL AND NOT EXISTS (
           SELECT 1 FROM json_each(requires) t
           WHERE t.value NOT IN (SELECT value FROM json_each(:caps)))))

-- name: limit_row
SELECT concurrency, rate_count, rate_per FROM {p}limits WHERE name = :name

-- name: holds_in_use
-- Slots held: a hold counts while its run is running at the epoch that took it.
SELECT count(*) FROM {p}limit_holds h JOIN {p}runs r
    ON r.id = h.run_id AND r.epoch = h.epoch AND r.status = 'running'
WHERE h.name = :name

-- name: owns_run
SELECT 1 FROM {p}runs WHERE id = :run_id AND epoch = :epoch AND owner = :worker
  AND status = 'running'

-- name: take_hold
INSERT INTO {p}limit_holds (name, run_id, seq, epoch, taken_at)
VALUES (:name, :run_id, :seq, :epoch, :now)
ON CONFLICT (name, run_id, seq) DO UPDATE SET epoch = excluded.epoch,
    taken_at = excluded.taken_at

-- name: take_grant
INSERT INTO {p}rate_grants (scope, at, run_id) VALUES (:scope, :now, :run_id)

-- name: drop_waiter
DELETE FROM {p}limit_waiters WHERE run_id = :run_id AND name = :name

-- name: add_waiter
INSERT INTO {p}limit_waiters (name, run_id, since) VALUES (:name, :run_id, :now)
ON CONFLICT (name, run_id) DO NOTHING

-- name: waiters_ahead
-- Parked waiters of :name that came before this run: its place in the line for a token.
SELECT count(*) FROM {p}limit_waiters w
WHERE w.name = :name
  AND (w.since, w.id) < (SELECT since, id FROM {p}limit_waiters
                          WHERE name = :name AND run_id = :run_id)

-- name: release_holds
-- The holds an attempt (:seq) or a recovered run's earlier epochs (:seq NULL) leave behind.
DELETE FROM {p}limit_holds
WHERE run_id = :run_id AND (seq = :seq OR (:seq IS NULL AND epoch < :epoch))
RETURNING name

-- name: wake_waiters
-- Wake the oldest runs parked on :name, as many as slots are free (one already woken and not
-- yet claimed is not woken twice).
UPDATE {p}runs SET wake_at = :now
WHERE id IN (
    SELECT w.run_id FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
    WHERE w.name = :name AND r.status = 'waiting'
      AND (r.wake_at IS NULL OR r.wake_at > :now)
      AND EXISTS (SELECT 1 FROM json_each(r.waiting_for) WHERE value = 'limit:' || :name)
    ORDER BY w.since, w.id
    LIMIT :free
)

-- name: forget_waiters
-- Waiters whose run ended (a cancel, say) wait for nothing.
DELETE FROM {p}limit_waiters
WHERE name = :name AND run_id IN (SELECT id FROM {p}runs
                                  WHERE status IN ('completed', 'failed', 'cancelled'))

-- name: queue_stats
-- For `perdure queues`: per queue, runs in line, parked, running, the oldest in line, and those
-- in line that no live worker's labels admit.
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
          AND NOT EXISTS (SELECT 1 FROM {p}workers w WHERE w.heartbeat_at >= :live_since
                          AND NOT EXISTS (SELECT 1 FROM json_each(r.requires) t
                                          WHERE t.value NOT IN (SELECT value FROM
                                                               json_each(w.labels)))))
FROM {p}queues q ORDER BY q.name

-- name: routed_stats
-- Routed runs without a queue: in line, and in line with no live worker to take them.
SELECT count(*),
       min(r.updated_at),
       sum(NOT EXISTS (SELECT 1 FROM {p}workers w WHERE w.heartbeat_at >= :live_since
                       AND NOT EXISTS (SELECT 1 FROM json_each(r.requires) t
                                       WHERE t.value NOT IN (SELECT value FROM
                                                            json_each(w.labels)))))
FROM {p}runs r
WHERE r.queue IS NULL AND r.requires IS NOT NULL AND r.status = 'pending'
  AND (r.queue IS NOT NULL OR r.requires IS NOT NULL)

-- name: limit_stats
SELECT l.name, l.concurrency, l.rate_count, l.rate_per,
       (SELECT count(*) FROM {p}limit_holds h JOIN {p}runs r
            ON r.id = h.run_id AND r.epoch = h.epoch AND r.status = 'running'
        WHERE h.name = l.name),
       (SELECT count(*) FROM {p}rate_grants g
        WHERE g.scope = 'limit:' || l.name AND g.at > :now - l.rate_per),
       (SELECT count(*) FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
        WHERE w.name = l.name AND r.status = 'waiting'),
       (SELECT min(w.since) FROM {p}limit_waiters w JOIN {p}runs r ON r.id = w.run_id
        WHERE w.name = l.name AND r.status = 'waiting')
FROM {p}limits l ORDER BY l.name

-- name: routable
-- Whether a live worker's labels admit the selector :requires (for RunInfo).
SELECT EXISTS (SELECT 1 FROM {p}workers w WHERE w.heartbeat_at >= :live_since
               AND NOT EXISTS (SELECT 1 FROM json_each(:requires) t
                               WHERE t.value NOT IN (SELECT value FROM json_each(w.labels))))

-- name: cancel_unstarted
-- A cancelled run that never started and stands in (or waits to enter) a line ends at once,
-- cancelled: nothing ran, nothing is undone, and it must not wait for a slot to be told so.
-- (Children are never queued or routed: no parent waits for it.)
UPDATE {p}runs
SET status = 'cancelled', error = :error, wake_at = NULL, updated_at = :now
WHERE id = :run_id AND epoch = 0 AND status IN ('pending', 'waiting')
  AND (queue IS NOT NULL OR requires IS NOT NULL) AND parent_id IS NULL
RETURNING id
