-- The outbox's named queries (see sqlite/0009_outbox.sql; the conventions of queries.sql).
-- The publisher's writes are fenced by its lease term: `fence` locks the lease row FOR SHARE
-- (a takeover, an UPDATE of it, waits for the write or the write sees the new holder and
-- writes nothing). A NOTIFY with payload 'outbox' on the adapter's channel wakes the
-- publisher (not the workers) when events become deliverable.
--
-- A key's head. Every statement that adds or removes a keyed event changes its key's count in
-- outbox_keys, so they serialize on that row: an emit learns from the count it made (an
-- upsert's RETURNING shows the newest row, after waiting for a concurrent writer) whether its
-- event is the head; a removal that leaves events behind promotes the next one in a second
-- statement of its transaction, whose snapshot, taken after the row lock, sees every event of
-- the key that committed before (and later emits see its count).

-- name: outbox_put
-- The emit: fenced like a journal write (FOR SHARE on the run's row, see put_entries), the
-- entry written once (a retry after a lost acknowledgement finds it and adds nothing), and the
-- event inserted only with it, ready if it is the first undelivered event of its key. An event
-- id already present is the same event (a resumed run emitting at the same point).
WITH owned AS (
    SELECT id FROM {p}runs
    WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
    FOR SHARE
), entry AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                            started_at, finished_at)
    SELECT owned.id, :seq::int, :kind, :name, :status, :attempts::int, :output, :error,
           :due_at::float8, :started_at::float8, :finished_at::float8
    FROM owned
    ON CONFLICT (run_id, seq) DO NOTHING
    RETURNING seq
), fresh AS (
    SELECT seq FROM entry WHERE NOT EXISTS (SELECT 1 FROM {p}outbox WHERE id = :event_id)
), counted AS (
    INSERT INTO {p}outbox_keys (key, pending)
    SELECT :key::text, 1 FROM fresh WHERE :key::text IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET pending = {p}outbox_keys.pending + 1
    RETURNING pending
), event AS (
    INSERT INTO {p}outbox (id, run_id, seq, name, key, payload, created_at, ready_at)
    SELECT :event_id, :run_id, fresh.seq, :event_name, :key, :payload, :now::float8,
           CASE WHEN :key::text IS NULL OR (SELECT pending FROM counted) = 1 THEN :now END
    FROM fresh
    RETURNING ready_at
), note AS (
    SELECT pg_notify(:channel, 'outbox') FROM event WHERE ready_at IS NOT NULL
)
SELECT (SELECT count(*) FROM owned) AS owned, (SELECT count(*) FROM note) AS notified

-- name: outbox_lead
-- Take or renew the publisher's lease: free, lapsed, ours already, or held by a worker that
-- is no longer registered (the reaper forgot it: it died). A change of holder bumps the term.
UPDATE {p}outbox_leader
SET term = CASE WHEN owner = :worker THEN term ELSE term + 1 END,
    owner = :worker, lease_until = :lease_until::float8
WHERE name = 'publisher'
  AND (owner = :worker OR owner IS NULL OR lease_until < :now::float8
       OR NOT EXISTS (SELECT 1 FROM {p}workers w WHERE w.id = owner))
RETURNING term

-- name: outbox_resign
UPDATE {p}outbox_leader SET owner = NULL, lease_until = 0
WHERE name = 'publisher' AND owner = :worker AND term = :term::bigint

-- name: outbox_due
-- Events that may be tried (heads of their key, or without a key), soonest first, except
-- those being delivered already; through the ready index, however long the backlog. The
-- caller asks for one more than it takes: the first one not due yet tells when to look again.
SELECT id, name, key, payload, run_id, position, created_at, attempts, last_error, ready_at
FROM {p}outbox
WHERE ready_at IS NOT NULL AND id <> ALL(:busy::text[])
ORDER BY ready_at, position
LIMIT :limit

-- name: outbox_delivered
-- Step 1 of a removal (then outbox_promote, same transaction): delete the delivered events
-- and count their keys down (locking the keys' rows).
WITH fence AS (
    SELECT 1 FROM {p}outbox_leader
    WHERE name = 'publisher' AND owner = :worker AND term = :term::bigint
    FOR SHARE
), gone AS (
    DELETE FROM {p}outbox WHERE id = ANY(:ids::text[]) AND EXISTS (SELECT 1 FROM fence)
    RETURNING key
), counted AS (
    UPDATE {p}outbox_keys k SET pending = k.pending - g.n
    FROM (SELECT key, count(*) AS n FROM gone WHERE key IS NOT NULL GROUP BY key) AS g
    WHERE k.key = g.key
    RETURNING k.key, k.pending
)
SELECT (SELECT count(*) FROM fence) AS held,
       array(SELECT key FROM counted WHERE pending > 0 ORDER BY key) AS keys,
       array(SELECT key FROM counted WHERE pending <= 0 ORDER BY key) AS emptied

-- name: outbox_promote
-- Step 2 of a removal (or a replay): keys left without events are forgotten; each of the
-- others gets its first event ready, unless one of its events is ready already. Returns the
-- events made ready (the publisher starts on them at once).
WITH forget AS (
    DELETE FROM {p}outbox_keys WHERE key = ANY(:emptied::text[]) AND pending <= 0
), heads AS (
    SELECT DISTINCT ON (key) position, key FROM {p}outbox
    WHERE key = ANY(:keys::text[])
    ORDER BY key, position
), promoted AS (
    UPDATE {p}outbox o SET ready_at = :now::float8
    FROM heads h
    WHERE o.position = h.position AND o.ready_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM {p}outbox r WHERE r.key = h.key AND r.ready_at IS NOT NULL)
    RETURNING o.id, o.name, o.key, o.payload, o.run_id, o.position, o.created_at, o.attempts,
              o.last_error, o.ready_at
), note AS (
    SELECT pg_notify(:channel, 'outbox') FROM (SELECT 1 FROM promoted LIMIT 1) AS any_
)
SELECT promoted.* FROM promoted WHERE (SELECT count(*) FROM note) >= 0

-- name: outbox_retry
WITH fence AS (
    SELECT 1 FROM {p}outbox_leader
    WHERE name = 'publisher' AND owner = :worker AND term = :term::bigint
    FOR SHARE
), upd AS (
    UPDATE {p}outbox SET attempts = :attempts::int, ready_at = :next_at::float8,
                         last_error = :error
    WHERE id = :id AND EXISTS (SELECT 1 FROM fence)
    RETURNING 1
)
SELECT (SELECT count(*) FROM fence) AS held, (SELECT count(*) FROM upd) AS updated

-- name: outbox_bury
-- Step 1 of a burial (then outbox_promote): like outbox_delivered, keeping the event.
WITH fence AS (
    SELECT 1 FROM {p}outbox_leader
    WHERE name = 'publisher' AND owner = :worker AND term = :term::bigint
    FOR SHARE
), gone AS (
    DELETE FROM {p}outbox WHERE id = :id AND EXISTS (SELECT 1 FROM fence)
    RETURNING position, id, run_id, seq, name, key, payload, created_at
), dead AS (
    INSERT INTO {p}outbox_dead (position, id, run_id, seq, name, key, payload, created_at,
                                attempts, last_error, failed_at)
    SELECT position, id, run_id, seq, name, key, payload, created_at, :attempts::int, :error,
           :now::float8
    FROM gone
    ON CONFLICT DO NOTHING
    RETURNING 1
), counted AS (
    UPDATE {p}outbox_keys k SET pending = k.pending - 1
    FROM gone WHERE k.key = gone.key
    RETURNING k.key, k.pending
)
SELECT (SELECT count(*) FROM fence) AS held, (SELECT count(*) FROM dead) AS buried,
       array(SELECT key FROM counted WHERE pending > 0) AS keys,
       array(SELECT key FROM counted WHERE pending <= 0) AS emptied

-- name: outbox_pending
SELECT id, name, key, payload, run_id, position, created_at, attempts, last_error, ready_at
FROM {p}outbox
WHERE (:key::text IS NULL OR key = :key)
ORDER BY position
LIMIT :limit

-- name: outbox_dead_list
SELECT id, name, key, payload, run_id, position, created_at, attempts, last_error, failed_at
FROM {p}outbox_dead
ORDER BY position
LIMIT :limit

-- name: outbox_replay
-- Step 1 of a replay (then outbox_promote): dead letters back at their old positions with a
-- fresh set of attempts (a keyed one waiting: its key's head is chosen by step 2).
WITH gone AS (
    DELETE FROM {p}outbox_dead WHERE :all::boolean OR id = ANY(:ids::text[])
    RETURNING position, id, run_id, seq, name, key, payload, created_at
), back AS (
    INSERT INTO {p}outbox (position, id, run_id, seq, name, key, payload, created_at,
                           attempts, ready_at, last_error)
    SELECT position, id, run_id, seq, name, key, payload, created_at, 0,
           CASE WHEN key IS NULL THEN :now::float8 END, NULL
    FROM gone
    ON CONFLICT DO NOTHING
    RETURNING key
), counted AS (
    INSERT INTO {p}outbox_keys (key, pending)
    SELECT key, count(*) FROM back WHERE key IS NOT NULL GROUP BY key
    ON CONFLICT (key) DO UPDATE SET pending = {p}outbox_keys.pending + excluded.pending
    RETURNING key
), note AS (
    SELECT pg_notify(:channel, 'outbox') FROM (SELECT 1 FROM back WHERE key IS NULL LIMIT 1) a
)
SELECT (SELECT count(*) FROM gone) AS moved, array(SELECT key FROM counted) AS keys,
       (SELECT count(*) FROM note) AS notified

-- name: outbox_purge
WITH gone AS (
    DELETE FROM {p}outbox_dead
    WHERE (:all::boolean OR id = ANY(:ids::text[]))
      AND (:before::float8 IS NULL OR failed_at < :before)
    RETURNING 1
)
SELECT count(*) FROM gone

-- name: outbox_recount_lock
-- Repair (a new publisher's first act, one transaction with the next two): emits wait while
-- the keys' counts and heads are rebuilt from the events themselves, so that nothing done to
-- the tables by hand can leave a key without a head.
LOCK TABLE {p}outbox_keys IN EXCLUSIVE MODE

-- name: outbox_recount_clear
DELETE FROM {p}outbox_keys

-- name: outbox_recount_fill
INSERT INTO {p}outbox_keys (key, pending)
SELECT key, count(*) FROM {p}outbox WHERE key IS NOT NULL GROUP BY key

-- name: outbox_recount_heads
WITH heads AS (
    SELECT DISTINCT ON (key) position, key FROM {p}outbox
    WHERE key IS NOT NULL
    ORDER BY key, position
)
UPDATE {p}outbox o SET ready_at = :now::float8
FROM heads h
WHERE (o.position = h.position AND o.ready_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM {p}outbox r WHERE r.key = h.key AND r.ready_at IS NOT NULL))

-- name: outbox_recount_free
UPDATE {p}outbox SET ready_at = :now::float8 WHERE key IS NULL AND ready_at IS NULL

-- name: outbox_stats
SELECT (SELECT count(*) FROM {p}outbox),
       (SELECT count(*) FROM {p}outbox WHERE attempts > 0),
       (SELECT count(*) FROM {p}outbox_dead),
       (SELECT min(created_at) FROM {p}outbox),
       (SELECT owner FROM {p}outbox_leader
        WHERE name = 'publisher' AND lease_until >= :now::float8)
