"""Blobs in a table of the run's own SQLite database (``Engine(blobs="database")``)."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from perdure.errors import StorageUnavailable
from perdure.storage.blobs import check_key

if TYPE_CHECKING:
    from perdure.storage.sqlite.adapter import SqliteStorage

__all__ = ["SqliteBlobs"]


class SqliteBlobs:
    """A blob store on the ``blobs`` table, through the adapter's connection thread.

    Blob operations always go through the thread (never inline on the event loop): copying
    megabytes in and out of the database must not stall the loop.
    """

    def __init__(self, storage: SqliteStorage) -> None:
        self._storage = storage

    def __repr__(self) -> str:
        return f"<SqliteBlobs in {self._storage.path!r}>"

    async def _run(self, name: str, params: dict[str, Any], *, write: bool) -> Any:
        sql = self._storage.query(name)

        def op(conn: sqlite3.Connection) -> Any:
            return conn.execute(sql, params).fetchone()

        try:
            return await self._storage.submit_to_thread(op, write=write)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"blob table: {type(exc).__name__}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        """Insert the blob (committed before this returns); a no-op if present."""
        await self._run("put_blob", {"key": check_key(key), "data": data, "size": len(data),
                                     "now": time.time()}, write=True)

    async def get(self, key: str) -> bytes | None:
        """The blob's bytes, or None."""
        row = await self._run("get_blob", {"key": check_key(key)}, write=False)
        return None if row is None else bytes(row[0])

    async def delete(self, key: str) -> None:
        """Delete the blob's row."""
        await self._run("delete_blob", {"key": check_key(key)}, write=True)

    async def exists(self, key: str) -> bool:
        """Whether the blob's row exists."""
        return await self._run("blob_exists", {"key": check_key(key)}, write=False) is not None
