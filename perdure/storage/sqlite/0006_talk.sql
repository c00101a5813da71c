-- Talking to runs, SQLite, version 6.
--
-- What a workflow publishes or is asked, as rows that clients read. Each workflow-side write
-- below commits in the same transaction as its journal entry, so a replay (which finds the
-- entry and writes nothing) can never repeat what a reader saw.
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
    run_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

CREATE TABLE {p}stream_items (
    run_id     TEXT NOT NULL,
    stream     TEXT NOT NULL,
    position   INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    value      TEXT,
    written_at REAL NOT NULL,
    PRIMARY KEY (run_id, stream, position)
) WITHOUT ROWID;

CREATE TABLE {p}requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    sent_at      REAL NOT NULL,
    consumed_seq INTEGER,
    reply        TEXT,
    error        TEXT,
    replied_at   REAL
);
CREATE UNIQUE INDEX {p}requests_key ON {p}requests (run_id, request_id);
CREATE INDEX {p}requests_pending ON {p}requests (run_id, name, id) WHERE consumed_seq IS NULL;

CREATE TABLE {p}callbacks (
    token        TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    completed_at REAL,
    value        TEXT,
    error        TEXT
);
CREATE INDEX {p}callbacks_run ON {p}callbacks (run_id, seq);
