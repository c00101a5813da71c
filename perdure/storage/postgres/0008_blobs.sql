-- Blobs, PostgreSQL, version 8 (mirrors sql/sqlite/0008_blobs.sql).
--
-- blobs  payloads offloaded out of the journal (Engine(blobs="database")), by content hash:
--        key is the SHA-256 of data in hex; rows reference a blob as "~blob:<label>:<key>:<size>".
--        Large values live out of line in TOAST, uncompressed (STORAGE EXTERNAL): pglz spent
--        ~1 s per 20 MB trying to compress payloads that did not shrink (bench/payloads.md);
--        compress with the payload codec (zstd) instead, before any encryption.
CREATE TABLE {p}blobs (
    key        text PRIMARY KEY,
    data       bytea NOT NULL,
    size       bigint NOT NULL,
    created_at double precision NOT NULL
);
ALTER TABLE {p}blobs ALTER COLUMN data SET STORAGE EXTERNAL;
