-- Durable waits, SQLite, version 2.
--
-- runs.waiting_for  what a parked run waits on, a JSON array of "signal:NAME" and "child:ID";
--                   a signal or a child's completion wakes the run only when it is listed.
-- signals          buffered signals in send order (id); consumed_seq is the journal seq of the
--                  run's wait that consumed it, set in the same transaction as that entry.
ALTER TABLE {p}runs ADD COLUMN waiting_for TEXT;

CREATE TABLE {p}signals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL,
    name            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    sent_at         REAL NOT NULL,
    consumed_seq    INTEGER
);
CREATE UNIQUE INDEX {p}signals_key ON {p}signals (run_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX {p}signals_pending ON {p}signals (run_id, name, id) WHERE consumed_seq IS NULL;
