"""The SQLite adapter's part for the overview (the dashboard): unfinished runs by status,
runs started and finished over time, and the registered workers.

A mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`; its SQL is in
``overview.sql``.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from perdure.storage.port import WorkerRow

__all__ = ["SqliteOverview"]


class SqliteOverview:
    """The overview's queries on SQLite (see the storage port)."""

    if TYPE_CHECKING:
        def _read(self, name: str, params: dict[str, Any], *, many: bool = True
                  ) -> asyncio.Future[Any]: ...

    async def unfinished_counts(self) -> dict[str, int]:
        """Unfinished runs by status."""
        return {str(s): int(n) for s, n in await self._read("unfinished_counts", {})}

    async def run_activity(self, *, since: float, until: float,
                           bucket: float) -> list[tuple[str, int, int]]:
        """Runs started and finished in [``since``, ``until``), per bucket."""
        params = {"since": since, "until": until, "bucket": bucket}
        started = await self._read("activity_started", params)
        finished = await self._read("activity_finished", params)
        return ([("started", int(b), int(n)) for b, n in started]
                + [(str(s), int(b), int(n)) for s, b, n in finished])

    async def list_workers(self, *, limit: int) -> list[WorkerRow]:
        """The registered workers, latest heartbeat first."""
        rows = await self._read("list_workers", {"limit": limit})
        return [WorkerRow(r[0], r[1], int(r[2]), float(r[3]), float(r[4]),
                          tuple(json.loads(r[5])) if r[5] else (), int(r[6]),
                          tuple(json.loads(r[7])) if r[7] else ()) for r in rows]
