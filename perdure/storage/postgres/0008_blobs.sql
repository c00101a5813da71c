-- Blobs, PostgreSQL, version 8 (mirrors sql/sqlite/0008_blobs.sql).
--
-- blobs  payloads offloaded out of the journal (Engine(blobs="database")), by content hash:
--        key is the SHA-256 of data in hex; rows reference a blob as "~blob:<label>:<key>:<size>".
--        Large values live out of line in TOAST; the journal rows stay small.
CREATE TABLE {p}blobs (
    key        text PRIMARY KEY,
    data       bytea NOT NULL,
    size       bigint NOT NULL,
    created_at double precision NOT NULL
);
