"""Blobs in a table of the runs' own PostgreSQL database (``Engine(blobs="database")``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import asyncpg

from perdure.errors import StorageUnavailable
from perdure.storage.blobs import check_key

if TYPE_CHECKING:
    from perdure.storage.postgres.adapter import PostgresStorage

__all__ = ["PostgresBlobs"]


class PostgresBlobs:
    """A blob store on the ``blobs`` table, on the adapter's pool. Every operation is
    idempotent (the insert does nothing if the key is there), so each is retried once after a
    lost connection, like the adapter's other idempotent statements."""

    def __init__(self, storage: PostgresStorage) -> None:
        self._storage = storage

    def __repr__(self) -> str:
        return f"<PostgresBlobs in {self._storage!r}>"

    async def _row(self, name: str, params: dict[str, Any]) -> Any:
        try:
            return await self._storage.fetch_row(name, params)
        except asyncpg.PostgresError as exc:
            raise StorageUnavailable(f"blob table: {type(exc).__name__}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        """Insert the blob (committed before this returns); a no-op if present."""
        await self._row("put_blob", {"key": check_key(key), "data": data, "size": len(data),
                                     "now": time.time()})

    async def get(self, key: str) -> bytes | None:
        """The blob's bytes, or None."""
        row = await self._row("get_blob", {"key": check_key(key)})
        return None if row is None else bytes(row[0])

    async def delete(self, key: str) -> None:
        """Delete the blob's row."""
        await self._row("delete_blob", {"key": check_key(key)})

    async def exists(self, key: str) -> bool:
        """Whether the blob's row exists."""
        return await self._row("blob_exists", {"key": check_key(key)}) is not None
