-- Finding runs: the runs list, its filters and keyset cursors, and tags (see listing.py).
--
-- Runs come newest first, by (created_at, id) descending. A page starts below the key
-- (:before_at, :before_id) (+infinity with no cursor) and at or above :after_at, as a range
-- of an ordered index, so a page costs the same however deep it is and runs created while
-- someone pages are never listed twice nor make a row skip. Four shapes, one per index
-- that drives the walk (the other filters are checked on the rows it yields):
--   list_runs           runs_created
--   list_runs_queued    runs_created, one queue's runs (its own shape: a generic plan of the
--                       plain list must not plan for a queue filter)
--   list_runs_tagged    tags_lookup, for the first tag filter
--   list_runs_children  runs_parent (a parent's children are few: sorted after the lookup)
--   list_runs_unfinished  runs_in_flight, one unfinished status at a time (merged)
-- Every filter left NULL matches every run; :tags is a JSON object of (key, value) pairs
-- that must all be present; :statuses a JSON array.

-- name: list_runs
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE (r.created_at, r.id) < (:before_at, :before_id) AND r.created_at >= :after_at
  AND (:statuses IS NULL OR r.status IN (SELECT value FROM json_each(:statuses)))
  AND (:workflow IS NULL OR r.workflow = :workflow)
  AND (:version IS NULL OR r.version = :version)
  AND (:parent_id IS NULL OR r.parent_id = :parent_id)
  AND (:tags IS NULL OR NOT EXISTS (
      SELECT 1 FROM json_each(:tags) w
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value)))
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit

-- name: list_runs_queued
-- One queue's runs: the creation index walked, the queue checked on each row (a queue's
-- runs are many, or it would not be asked for).
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE (r.created_at, r.id) < (:before_at, :before_id) AND r.created_at >= :after_at
  AND (:statuses IS NULL OR r.status IN (SELECT value FROM json_each(:statuses)))
  AND (:workflow IS NULL OR r.workflow = :workflow)
  AND (:version IS NULL OR r.version = :version)
  AND (:queue IS NULL OR r.queue = :queue)
  AND (:parent_id IS NULL OR r.parent_id = :parent_id)
  AND (:tags IS NULL OR NOT EXISTS (
      SELECT 1 FROM json_each(:tags) w
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value)))
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit

-- name: list_runs_tagged
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}tags d CROSS JOIN {p}runs r  -- CROSS JOIN: the tag drives, whatever the statistics say
WHERE r.id = d.run_id AND d.key = :tag_key AND d.value = :tag_value
  AND (d.created_at, d.run_id) < (:before_at, :before_id) AND d.created_at >= :after_at
  AND (:statuses IS NULL OR r.status IN (SELECT value FROM json_each(:statuses)))
  AND (:workflow IS NULL OR r.workflow = :workflow)
  AND (:version IS NULL OR r.version = :version)
  AND (:queue IS NULL OR r.queue = :queue)
  AND (:parent_id IS NULL OR r.parent_id = :parent_id)
  AND (:tags IS NULL OR NOT EXISTS (
      SELECT 1 FROM json_each(:tags) w
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value)))
ORDER BY d.created_at DESC, d.run_id DESC
LIMIT :limit

-- name: list_runs_children
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r
WHERE r.parent_id = :parent_id
  AND (r.created_at, r.id) < (:before_at, :before_id) AND r.created_at >= :after_at
  AND (:statuses IS NULL OR r.status IN (SELECT value FROM json_each(:statuses)))
  AND (:workflow IS NULL OR r.workflow = :workflow)
  AND (:version IS NULL OR r.version = :version)
  AND (:queue IS NULL OR r.queue = :queue)
  AND (:tags IS NULL OR NOT EXISTS (
      SELECT 1 FROM json_each(:tags) w
      WHERE NOT EXISTS (SELECT 1 FROM {p}tags t
                        WHERE t.run_id = r.id AND t.key = w.key AND t.value = w.value)))
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit

-- name: list_runs_unfinished
-- One unfinished status (no parent or tag filter): a range of runs_in_flight, in its order,
-- instead of a walk of the whole history by creation time that filters on the status (ten
-- blocked runs among a million finished ones would read all of them). Several statuses are
-- one such query each, merged by the adapter.
SELECT r.id, r.workflow, r.version, r.status, r.input, r.output, r.error, r.epoch, r.owner,
       r.lease_until, r.wake_at, r.parent_id, r.parent_seq, r.deadline, r.cancel_requested,
       r.created_at, r.updated_at, r.generation, r.incarnation, r.pause_requested,
       r.forked_from, r.forked_seq, r.tags, r.queue, r.partition_key, r.priority, r.requires
FROM {p}runs r INDEXED BY {p}runs_in_flight
WHERE r.status = :status AND r.status NOT IN ('completed', 'failed', 'cancelled')
  AND (r.created_at, r.id) < (:before_at, :before_id) AND r.created_at >= :after_at
  AND (:workflow IS NULL OR r.workflow = :workflow)
  AND (:version IS NULL OR r.version = :version)
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit

-- name: insert_tags
-- A new run's tags (:tags, a JSON object), stamped with its creation time.
INSERT INTO {p}tags (run_id, key, value, created_at)
SELECT :id, key, value, :now FROM json_each(:tags)

-- name: tag_owner
-- set_tags, step 1 (fenced): the run, if the writer still holds it.
SELECT created_at FROM {p}runs WHERE id = :run_id AND epoch = :epoch AND owner = :worker

-- name: clear_tags
DELETE FROM {p}tags WHERE run_id = :run_id

-- name: replace_tags
UPDATE {p}runs SET tags = :tags WHERE id = :run_id
