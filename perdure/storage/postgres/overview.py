"""The PostgreSQL adapter's part for the overview (the dashboard): unfinished runs by status,
runs started and finished over time, and the registered workers.

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`; its SQL is in
``overview.sql``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perdure.storage.port import WorkerRow

__all__ = ["PostgresOverview"]


class PostgresOverview:
    """The overview's queries on PostgreSQL (see the storage port)."""

    if TYPE_CHECKING:
        async def _fetch(self, name: str, params: Mapping[str, Any], *,
                         retry: bool = True) -> list[Any]: ...

    async def unfinished_counts(self) -> dict[str, int]:
        """Unfinished runs by status."""
        return {str(s): int(n) for s, n in await self._fetch("unfinished_counts", {})}

    async def run_activity(self, *, since: float, until: float,
                           bucket: float) -> list[tuple[str, int, int]]:
        """Runs started and finished in [``since``, ``until``), per bucket."""
        params = {"since": float(since), "until": float(until), "bucket": float(bucket)}
        started = await self._fetch("activity_started", params)
        finished = await self._fetch("activity_finished", params)
        return ([("started", int(b), int(n)) for b, n in started]
                + [(str(s), int(b), int(n)) for s, b, n in finished])

    async def list_workers(self, *, limit: int) -> list[WorkerRow]:
        """The registered workers, latest heartbeat first."""
        rows = await self._fetch("list_workers", {"limit": limit})
        return [WorkerRow(r[0], r[1], int(r[2]), float(r[3]), float(r[4]),
                          tuple(r[5] or ()), int(r[6]), tuple(r[7] or ())) for r in rows]
