-- Talking to runs, PostgreSQL, version 6 (mirrors sqlite/0006_talk.sql).
--
-- What a workflow publishes or is asked, as rows that clients read. Each workflow-side write
-- below commits in the same statement as its journal entry, so a replay (which finds the
-- entry and writes nothing) can never repeat what a reader saw. Those writes, and a run
-- finishing that has streams or unanswered requests, NOTIFY the talk channel (payload: the
-- run id), which only processes with readers LISTEN to.
--
-- events        the current value of each event key of a run: last writer wins (the journal
--               keeps every set).
-- stream_items  each stream's items by position; (run_id, stream, position) is the key, so a
--               write can never add an item twice. A NULL value is the end marker the
--               workflow writes when it closes the stream.
-- requests      requests sent into a run, in send order (id); consumed_seq is the journal seq
--               of the wait that took it (set with that entry); reply / error hold the answer,
--               written with the journal entry of req.reply() / req.reject().
-- callbacks     callback tokens (unguessable, single-use) and how they were completed.
CREATE TABLE {p}events (
    run_id     text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    seq        integer NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE {p}stream_items (
    run_id     text NOT NULL,
    stream     text NOT NULL,
    position   integer NOT NULL,
    seq        integer NOT NULL,
    value      text,
    written_at double precision NOT NULL,
    PRIMARY KEY (run_id, stream, position)
);

CREATE TABLE {p}requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       text NOT NULL,
    request_id   text NOT NULL,
    name         text NOT NULL,
    payload      text NOT NULL,
    sent_at      double precision NOT NULL,
    consumed_seq integer,
    reply        text,
    error        text,
    replied_at   double precision
);
CREATE UNIQUE INDEX {n}requests_key ON {p}requests (run_id, request_id);
CREATE INDEX {n}requests_pending ON {p}requests (run_id, name, id) WHERE consumed_seq IS NULL;
-- A retried consume (its first commit's acknowledgement was lost) finds what it took.
CREATE INDEX {n}requests_consumed ON {p}requests (run_id, consumed_seq)
    WHERE consumed_seq IS NOT NULL;

CREATE TABLE {p}callbacks (
    token        text PRIMARY KEY,
    run_id       text NOT NULL,
    seq          integer NOT NULL,
    created_at   double precision NOT NULL,
    completed_at double precision,
    value        text,
    error        text
);
CREATE INDEX {n}callbacks_run ON {p}callbacks (run_id, seq);
