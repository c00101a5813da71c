-- Finding runs: the runs list, its filters and keyset cursors, and tags (see listing.py;
-- mirrors sqlite/listing.sql).
--
-- Runs come newest first, by (created_at, id) descending. A page starts below the key
-- (:before_at, :before_id) (+infinity with no cursor) and at or above :after_at, a range of
-- an ordered index, so a page costs the same however deep it is and runs created while
-- someone pages are never listed twice nor make a row skip. Four shapes, one per index that
-- drives the walk, so that even a generic plan (a prepared statement's) walks it; the other
-- filters are checked on the rows it yields:
--   list_runs           runs_created
--   list_runs_queued    runs_created, one queue's runs (its own shape: a generic plan of the
--                       plain list must not plan for a queue filter)
--   list_runs_tagged    tags_lookup, for the first tag filter
--   list_runs_children  runs_parent (a parent's children are few: sorted after the lookup)
--   list_runs_unfinished  runs_in_flight, one unfinished status at a time (merged)
-- A NULL filter matches every run; the (:tag_keys, :tag_values) pairs must all be present.

-- name: list_runs
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE (r.created_at, r.id) < (:before_at::float8, :before_id::text)
  AND r.created_at >= :after_at::float8
  AND (:statuses::text[] IS NULL OR r.status = ANY(:statuses))
  AND (:workflow::text IS NULL OR r.workflow = :workflow)
  AND (:version::text IS NULL OR r.version = :version)
  AND (:parent_id::text IS NULL OR r.parent_id = :parent_id)
  AND NOT EXISTS (
      SELECT 1 FROM unnest(:tag_keys::text[], :tag_values::text[]) AS w(key, value)
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value))
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit::bigint

-- name: list_runs_queued
-- One queue's runs: the creation index walked, the queue checked on each row (a queue's
-- runs are many, or it would not be asked for).
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE (r.created_at, r.id) < (:before_at::float8, :before_id::text)
  AND r.created_at >= :after_at::float8
  AND (:statuses::text[] IS NULL OR r.status = ANY(:statuses))
  AND (:workflow::text IS NULL OR r.workflow = :workflow)
  AND (:version::text IS NULL OR r.version = :version)
  AND (:queue::text IS NULL OR r.queue = :queue)
  AND (:parent_id::text IS NULL OR r.parent_id = :parent_id)
  AND NOT EXISTS (
      SELECT 1 FROM unnest(:tag_keys::text[], :tag_values::text[]) AS w(key, value)
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value))
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit::bigint

-- name: list_runs_tagged
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}tags d JOIN {p}runs r ON r.id = d.run_id
WHERE d.key = :tag_key::text AND d.value = :tag_value::text
  AND (d.created_at, d.run_id) < (:before_at::float8, :before_id::text)
  AND d.created_at >= :after_at::float8
  AND (:statuses::text[] IS NULL OR r.status = ANY(:statuses))
  AND (:workflow::text IS NULL OR r.workflow = :workflow)
  AND (:version::text IS NULL OR r.version = :version)
  AND (:queue::text IS NULL OR r.queue = :queue)
  AND (:parent_id::text IS NULL OR r.parent_id = :parent_id)
  AND NOT EXISTS (
      SELECT 1 FROM unnest(:tag_keys::text[], :tag_values::text[]) AS w(key, value)
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value))
ORDER BY d.created_at DESC, d.run_id DESC
LIMIT :limit::bigint

-- name: list_runs_children
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE r.parent_id = :parent_id::text
  AND (r.created_at, r.id) < (:before_at::float8, :before_id::text)
  AND r.created_at >= :after_at::float8
  AND (:statuses::text[] IS NULL OR r.status = ANY(:statuses))
  AND (:workflow::text IS NULL OR r.workflow = :workflow)
  AND (:version::text IS NULL OR r.version = :version)
  AND (:queue::text IS NULL OR r.queue = :queue)
  AND NOT EXISTS (
      SELECT 1 FROM unnest(:tag_keys::text[], :tag_values::text[]) AS w(key, value)
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value))
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit::bigint

-- name: list_runs_unfinished
-- One unfinished status (no parent or tag filter): a range of runs_in_flight, in its order,
-- instead of a walk of the whole history by creation time that filters on the status (ten
-- blocked runs among a million finished ones would read all of them). The constant NOT IN
-- lets even a generic plan prove the partial index applies. Several statuses are one such
-- query each, merged by the adapter.
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE r.status = :status::text AND r.status NOT IN ('completed', 'failed', 'cancelled')
  AND (r.created_at, r.id) < (:before_at::float8, :before_id::text)
  AND r.created_at >= :after_at::float8
  AND (:workflow::text IS NULL OR r.workflow = :workflow)
  AND (:version::text IS NULL OR r.version = :version)
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit::bigint

-- name: set_tags_lock
-- set_tags, step 1 (one transaction with the steps below): fence and lock the run's row.
SELECT created_at FROM {p}runs
WHERE id = :run_id AND epoch = :epoch::bigint AND owner = :worker
FOR UPDATE

-- name: set_tags
-- Step 2: journal the entry and replace the run's tags (the column and the searched rows).
WITH put AS (
    INSERT INTO {p}journal (run_id, seq, kind, name, status, attempts, output, error, due_at,
                           started_at, finished_at)
    VALUES (:run_id, :seq::int, :kind, :name, :status, :attempts::int, :output, :error,
            :due_at::float8, :started_at::float8, :finished_at::float8)
    ON CONFLICT (run_id, seq) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, status = excluded.status,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        due_at = excluded.due_at, finished_at = excluded.finished_at
    RETURNING 1
), cleared AS (
    DELETE FROM {p}tags WHERE run_id = :run_id AND NOT (key = ANY(:tag_keys::text[]))
), upserted AS (
    INSERT INTO {p}tags (run_id, key, value, created_at)
    SELECT :run_id, t.key, t.value, :created_at::float8
    FROM unnest(:tag_keys, :tag_values::text[]) AS t(key, value)
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value
), shown AS (
    UPDATE {p}runs SET tags = :tags WHERE id = :run_id
)
SELECT (SELECT count(*) FROM put) AS written
