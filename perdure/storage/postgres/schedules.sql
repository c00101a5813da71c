-- Schedules, PostgreSQL (see 0020_schedules.sql). A firing is one transaction: fire_schedule
-- (compare-and-set on revision; the UPDATE waits for, then re-checks, a concurrent firing of
-- the same schedule, so exactly one of two workers moves it on), then insert_run for each
-- slot's run (which NOTIFYs the workers) and cancel_lock + request_cancel for an overlap
-- policy's cancellation (queries.sql). A schedule created, changed or resumed NOTIFYs the
-- workers, which then re-read when the next slot is due.

-- name: insert_schedule
WITH ins AS (
    INSERT INTO {p}schedules (id, workflow, version, input, cron, timezone, overlap, catchup,
                              paused, next_due, created_at, updated_at)
    VALUES (:id, :workflow, :version, :input, :cron, :timezone, :overlap, :catchup::float8,
            false, :next_due::float8, :now::float8, :now)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), note AS (
    SELECT pg_notify(:channel, 'schedule') FROM ins
)
SELECT (SELECT count(*) FROM ins) AS created, (SELECT count(*) FROM note) AS notified

-- name: replace_schedule
WITH upd AS (
    UPDATE {p}schedules
    SET workflow = :workflow, version = :version, input = :input, cron = :cron,
        timezone = :timezone, overlap = :overlap, catchup = :catchup::float8,
        next_due = :next_due::float8, revision = revision + 1, updated_at = :now::float8
    WHERE id = :id AND revision = :revision::bigint
    RETURNING id
), note AS (
    SELECT pg_notify(:channel, 'schedule') FROM upd
)
SELECT (SELECT count(*) FROM upd) AS replaced, (SELECT count(*) FROM note) AS notified

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
UPDATE {p}schedules SET paused = true, revision = revision + 1, updated_at = :now::float8
WHERE id = :id
RETURNING id

-- name: resume_schedule
-- A schedule that was not paused keeps its next_due: resuming it must not drop a due slot.
WITH upd AS (
    UPDATE {p}schedules
    SET next_due = CASE WHEN paused THEN :next_due::float8 ELSE next_due END, paused = false,
        revision = revision + 1, updated_at = :now::float8
    WHERE id = :id
    RETURNING id
), note AS (
    SELECT pg_notify(:channel, 'schedule') FROM upd
)
SELECT (SELECT count(*) FROM upd) AS resumed, (SELECT count(*) FROM note) AS notified

-- name: delete_schedule
DELETE FROM {p}schedules WHERE id = :id RETURNING id

-- name: due_schedules
-- Slots due now (through schedules_due), and buffered slots whose previous run has finished
-- (or is gone) (through schedules_buffered).
SELECT * FROM (
    SELECT s.id, s.workflow, s.version, s.input, s.cron, s.timezone, s.overlap, s.catchup,
           s.paused, s.next_due, s.buffered_at, s.last_run_id, s.last_slot, s.fired,
           s.skipped_missed, s.skipped_overlap, s.revision, s.created_at, s.updated_at,
           r.status
    FROM {p}schedules s LEFT JOIN {p}runs r ON r.id = s.last_run_id
    WHERE NOT s.paused AND s.next_due IS NOT NULL AND s.next_due <= :now::float8
    UNION
    SELECT s.id, s.workflow, s.version, s.input, s.cron, s.timezone, s.overlap, s.catchup,
           s.paused, s.next_due, s.buffered_at, s.last_run_id, s.last_slot, s.fired,
           s.skipped_missed, s.skipped_overlap, s.revision, s.created_at, s.updated_at,
           r.status
    FROM {p}schedules s LEFT JOIN {p}runs r ON r.id = s.last_run_id
    WHERE NOT s.paused AND s.buffered_at IS NOT NULL
      AND (r.status IS NULL OR r.status IN ('completed', 'failed', 'cancelled'))
) AS due
ORDER BY coalesce(buffered_at, next_due), id
LIMIT :limit

-- name: next_schedule_due
SELECT (SELECT min(next_due) FROM {p}schedules WHERE NOT paused AND next_due IS NOT NULL),
       EXISTS (SELECT 1 FROM {p}schedules WHERE NOT paused AND buffered_at IS NOT NULL)

-- name: fire_schedule
-- Compare-and-set: nothing is written if another worker fired (or an operator changed) the
-- schedule since the firing was computed.
UPDATE {p}schedules
SET next_due = :next_due::float8, buffered_at = :buffered_at::float8,
    last_run_id = :last_run_id, last_slot = :last_slot::float8,
    fired = fired + :fired::bigint, skipped_missed = skipped_missed + :missed::bigint,
    skipped_overlap = skipped_overlap + :overlapped::bigint, revision = revision + 1,
    updated_at = :now::float8
WHERE id = :id AND revision = :revision::bigint
RETURNING id
