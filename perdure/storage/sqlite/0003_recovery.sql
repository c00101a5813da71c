-- Recovery, SQLite, version 3.
--
-- runs.claimed_from  the status a run was claimed from. "running" means its previous worker
--                    died or lost its lease mid-flight: the step it was executing may have had
--                    its side effect, so a pending cancel must not pre-empt that step on replay.
ALTER TABLE {p}runs ADD COLUMN claimed_from TEXT;
