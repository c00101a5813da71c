-- Durable waits, PostgreSQL, version 2 (mirrors sql/sqlite/0002_waits.sql).
--
-- runs.waiting_for  what a parked run waits on: "signal:NAME" and "child:ID" elements (an
--                   array here, JSON text on SQLite); a signal or a child's completion wakes
--                   the run only when it is listed.
-- signals          buffered signals in send order (id); consumed_seq is the journal seq of the
--                  run's wait that consumed it, set in the same transaction as that entry.
ALTER TABLE {p}runs ADD COLUMN waiting_for text[];

CREATE TABLE {p}signals (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          text NOT NULL,
    name            text NOT NULL,
    payload         text NOT NULL,
    idempotency_key text,
    sent_at         double precision NOT NULL,
    consumed_seq    integer
);
CREATE UNIQUE INDEX {n}signals_key ON {p}signals (run_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX {n}signals_pending ON {p}signals (run_id, name, id) WHERE consumed_seq IS NULL;
-- A retried consume (its first commit's acknowledgement was lost) finds what it took.
CREATE INDEX {n}signals_consumed ON {p}signals (run_id, consumed_seq)
    WHERE consumed_seq IS NOT NULL;
