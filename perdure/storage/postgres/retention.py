"""The PostgreSQL adapter's part for keeping the tables small: pruning finished runs with
every row of theirs, and the lease that lets one worker at a time do it.

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`; its SQL is in
``retention.sql``, where each per-run table has its ``prune_child_*`` query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.storage.postgres.pool import Connection

__all__ = ["PostgresRetention"]

T = TypeVar("T")


class PostgresRetention:
    """Pruning and leases on PostgreSQL (see the storage port)."""

    if TYPE_CHECKING:
        _sql: dict[str, tuple[str, tuple[str, ...]]]

        def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]: ...

        async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                        retry: bool) -> T: ...

        async def _fetch(self, name: str, params: Mapping[str, Any], *,
                         retry: bool = True) -> list[Any]: ...

    @staticmethod
    def _cutoffs(cutoffs: Mapping[str, float], limit: int | None) -> dict[str, Any]:
        def cut(status: str) -> float | None:
            value = cutoffs.get(status)
            return None if value is None else float(value)

        return {"completed_before": cut("completed"), "failed_before": cut("failed"),
                "cancelled_before": cut("cancelled"), "limit": limit}

    async def prune_runs(self, cutoffs: Mapping[str, float], *, limit: int) -> int:
        """One batch: up to ``limit`` prunable runs and their rows everywhere, in one
        transaction. Retried after a lost connection (a batch that committed is simply not
        found again)."""
        pick = self._args("prunable", self._cutoffs(cutoffs, limit))
        children = sorted(name for name in self._sql if name.startswith("prune_child_"))

        async def op(conn: Connection, retrying: bool) -> int:
            async with conn.transaction():
                ids = [r[0] for r in await conn.fetch(*pick)]
                if not ids:
                    return 0
                gone = [r[0] for r in await conn.fetch(*self._args("prune_runs",
                                                                   {"ids": ids}))]
                for name in children:
                    await conn.execute(*self._args(name, {"ids": gone}))
                return len(gone)

        return await self._call(op, retry=True)

    async def count_prunable(self, cutoffs: Mapping[str, float]) -> int:
        """How many runs pruning would delete now."""
        sql, *args = self._args("prunable", self._cutoffs(cutoffs, None))
        count = f"SELECT count(*) FROM ({sql}) AS page"

        async def op(conn: Connection, retrying: bool) -> int:
            return int(await conn.fetchval(count, *args))

        return await self._call(op, retry=True)

    async def take_lease(self, name: str, owner: str, *, now: float, until: float) -> bool:
        """Take or renew the named lease; whether ``owner`` holds it."""
        rows = await self._fetch("take_lease", {"name": name, "owner": owner,
                                                "now": float(now), "until": float(until)})
        return bool(rows)

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the named lease up."""
        await self._fetch("release_lease", {"name": name, "owner": owner})
