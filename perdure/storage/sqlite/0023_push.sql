-- Push between the processes sharing the file, SQLite, version 23.
--
-- workers.wake_addr  the worker's Unix datagram socket (``@name``: Linux's abstract namespace;
--                    else a path): a process that commits a start, a signal, a cancel request
--                    and the like sends it one byte, so the worker looks at once instead of at
--                    its next poll (perdure/storage/sqlite/push.py). NULL: the worker polls only.
ALTER TABLE {p}workers ADD COLUMN wake_addr TEXT;
