"""The SQLite adapter's part for keeping the tables small: pruning finished runs with every
row of theirs, and the lease that lets one worker at a time do it.

A mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`; its SQL is in
``retention.sql``, where each per-run table has its ``prune_child_*`` query.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

__all__ = ["SqliteRetention"]


class SqliteRetention:
    """Pruning and leases on SQLite (see the storage port)."""

    if TYPE_CHECKING:
        _q: dict[str, str]

        def _submit(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                    ) -> asyncio.Future[Any]: ...

        def _write(self, name: str, params: dict[str, Any], *, fenced: bool = False,
                   returning: bool = False) -> asyncio.Future[Any]: ...

    def _cutoffs(self, cutoffs: Mapping[str, float], limit: int) -> dict[str, Any]:
        return {"completed_before": cutoffs.get("completed"),
                "failed_before": cutoffs.get("failed"),
                "cancelled_before": cutoffs.get("cancelled"), "limit": limit}

    async def prune_runs(self, cutoffs: Mapping[str, float], *, limit: int) -> int:
        """One batch: up to ``limit`` prunable runs and their rows everywhere, in one
        transaction."""
        q = self._q
        pick = q["prunable"]
        children = [q[name] for name in sorted(q) if name.startswith("prune_child_")]
        params = self._cutoffs(cutoffs, limit)

        def op(conn: sqlite3.Connection) -> int:
            ids = [r[0] for r in conn.execute(pick, params)]
            if not ids:
                return 0
            gone = json.dumps([r[0] for r in conn.execute(q["prune_runs"],
                                                          {"ids": json.dumps(ids)})])
            for sql in children:
                conn.execute(sql, {"ids": gone})
            return len(json.loads(gone))

        result: int = await self._submit(op, write=True)
        return result

    async def count_prunable(self, cutoffs: Mapping[str, float]) -> int:
        """How many runs pruning would delete now."""
        sql = f"SELECT count(*) FROM ({self._q['prunable']})"
        params = self._cutoffs(cutoffs, -1)

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql, params).fetchone()[0])

        result: int = await self._submit(op, write=False)
        return result

    async def take_lease(self, name: str, owner: str, *, now: float, until: float) -> bool:
        """Take or renew the named lease; whether ``owner`` holds it."""
        rows = await self._write("take_lease", {"name": name, "owner": owner, "now": now,
                                                "until": until}, returning=True)
        return bool(rows)

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the named lease up."""
        await self._write("release_lease", {"name": name, "owner": owner})
