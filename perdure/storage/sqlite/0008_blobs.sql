-- Blobs, SQLite, version 8.
--
-- blobs  payloads offloaded out of the journal (Engine(blobs="database")), by content hash:
--        key is the SHA-256 of data in hex; rows reference a blob as "~blob:<label>:<key>:<size>".
--        A rowid table (not WITHOUT ROWID): its rows are large by design.
CREATE TABLE {p}blobs (
    key        TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL
);
