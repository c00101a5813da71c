-- Schedules, SQLite (see 0020_schedules.sql). A firing is one transaction on the connection
-- thread: fire_schedule (compare-and-set on revision), then insert_run for each slot's run and
-- request_cancel for an overlap policy's cancellation (queries.sql).

-- name: insert_schedule
INSERT INTO {p}schedules (id, workflow, version, input, cron, timezone, overlap, catchup,
                          paused, next_due, created_at, updated_at)
VALUES (:id, :workflow, :version, :input, :cron, :timezone, :overlap, :catchup, 0, :next_due,
        :now, :now)
ON CONFLICT (id) DO NOTHING

-- name: replace_schedule
UPDATE {p}schedules
SET workflow = :workflow, version = :version, input = :input, cron = :cron,
    timezone = :timezone, overlap = :overlap, catchup = :catchup, next_due = :next_due,
    revision = revision + 1, updated_at = :now
WHERE id = :id AND revision = :revision

-- name: get_schedule
SELECT s.id, s.workflow, s.version, s.input, s.cron, s.timezone, s.overlap, s.catchup,
       s.paused, s.next_due, s.buffered_at, s.last_run_id, s.last_slot, s.fired,
       s.skipped_missed, s.skipped_overlap, s.revision, s.created_at, s.updated_at, r.status
FROM {p}schedules s LEFT JOIN {p}runs r ON r.id = s.last_run_id
WHERE s.id = :id

-- name: list_schedules
SELECT s.id, s.workflow, s.version, s.input, s.cron, s.timezone, s.overlap, s.catchup,
       s.paused, s.next_due, s.buffered_at, s.last_run_id, s.last_slot, s.fired,
       s.skipped_missed, s.skipped_overlap, s.revision, s.created_at, s.updated_at, r.status
FROM {p}schedules s LEFT JOIN {p}runs r ON r.id = s.last_run_id
ORDER BY s.id

-- name: pause_schedule
UPDATE {p}schedules SET paused = 1, revision = revision + 1, updated_at = :now WHERE id = :id

-- name: resume_schedule
-- A schedule that was not paused keeps its next_due: resuming it must not drop a due slot.
UPDATE {p}schedules
SET next_due = CASE WHEN paused = 1 THEN :next_due ELSE next_due END, paused = 0,
    revision = revision + 1, updated_at = :now
WHERE id = :id

-- name: delete_schedule
DELETE FROM {p}schedules WHERE id = :id

-- name: due_schedules
-- Slots due now (through schedules_due), and buffered slots whose previous run has finished
-- (or is gone) (through schedules_buffered).
SELECT * FROM (
    SELECT s.id, s.workflow, s.version, s.input, s.cron, s.timezone, s.overlap, s.catchup,
           s.paused, s.next_due, s.buffered_at, s.last_run_id, s.last_slot, s.fired,
           s.skipped_missed, s.skipped_overlap, s.revision, s.created_at, s.updated_at,
           r.status
    FROM {p}schedules s LEFT JOIN {p}runs r ON r.id = s.last_run_id
    WHERE s.paused = 0 AND s.next_due IS NOT NULL AND s.next_due <= :now
    UNION
    SELECT s.id, s.workflow, s.version, s.input, s.cron, s.timezone, s.overlap, s.catchup,
           s.paused, s.next_due, s.buffered_at, s.last_run_id, s.last_slot, s.fired,
           s.skipped_missed, s.skipped_overlap, s.revision, s.created_at, s.updated_at,
           r.status
    FROM {p}schedules s LEFT JOIN {p}runs r ON r.id = s.last_run_id
    WHERE s.paused = 0 AND s.buffered_at IS NOT NULL
      AND (r.status IS NULL OR r.status IN ('completed', 'failed', 'cancelled'))
)
ORDER BY coalesce(buffered_at, next_due), id
LIMIT :limit

-- name: next_schedule_due
SELECT (SELECT min(next_due) FROM {p}schedules WHERE paused = 0 AND next_due IS NOT NULL),
       EXISTS (SELECT 1 FROM {p}schedules WHERE paused = 0 AND buffered_at IS NOT NULL)

-- name: fire_schedule
-- Compare-and-set: nothing is written if another worker fired (or an operator changed) the
-- schedule since the firing was computed.
UPDATE {p}schedules
SET next_due = :next_due, buffered_at = :buffered_at, last_run_id = :last_run_id,
    last_slot = :last_slot, fired = fired + :fired, skipped_missed = skipped_missed + :missed,
    skipped_overlap = skipped_overlap + :overlapped, revision = revision + 1,
    updated_at = :now
WHERE id = :id AND revision = :revision
