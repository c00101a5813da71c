"""The PostgreSQL adapter's part for finding runs: the filtered, keyset-paged runs list, and
tags.

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`, kept apart so the
adapter's core stays small; its SQL is in ``listing.sql``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.records import JournalEntry, RunRow
from perdure.storage.params import entry_params, lost
from perdure.storage.port import RunQuery
from perdure.storage.postgres.pool import Connection

#: the statuses served by the unfinished runs' index (a rare one is found without
#: walking the finished history)
UNFINISHED = frozenset({"pending", "running", "waiting", "blocked", "paused"})

__all__ = ["PostgresListing"]

T = TypeVar("T")


class PostgresListing:
    """The runs list and tags on PostgreSQL (see the storage port)."""

    if TYPE_CHECKING:
        _sql: dict[str, tuple[str, tuple[str, ...]]]

        def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]: ...

        async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                        retry: bool) -> T: ...

        async def _fetch(self, name: str, params: Mapping[str, Any], *,
                         retry: bool = True) -> list[Any]: ...

    def _list_query(self, query: RunQuery) -> tuple[str, dict[str, Any]]:
        """The query that walks the best index for ``query``, and its parameters."""
        params: dict[str, Any] = {
            "statuses": list(query.statuses) or None, "workflow": query.workflow,
            "version": query.version, "parent_id": query.parent_id,
            "tag_keys": [k for k, _ in query.tags], "tag_values": [v for _, v in query.tags],
            "tag_key": query.tags[0][0] if query.tags else None,
            "tag_value": query.tags[0][1] if query.tags else None,
            "before_at": float(query.before_at), "before_id": query.before_id,
            "after_at": float(query.after_at), "limit": query.limit,
        }
        if query.parent_id is not None:
            return "list_runs_children", params
        if query.tags:
            return "list_runs_tagged", params
        if query.statuses and UNFINISHED.issuperset(query.statuses):
            return "list_runs_unfinished", params
        return "list_runs", params

    async def list_runs(self, query: RunQuery) -> list[RunRow]:
        """Up to ``query.limit`` matching runs, newest first."""
        name, params = self._list_query(query)
        return [RunRow(*r) for r in await self._fetch(name, params)]

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match (the list query without its limit, counted)."""
        name, params = self._list_query(query)
        params["limit"] = None  # LIMIT NULL: no limit
        sql, *args = self._args(name, params)
        count = f"SELECT count(*) FROM ({sql}) AS page"

        async def op(conn: Connection, retrying: bool) -> int:
            return int(await conn.fetchval(count, *args))

        return await self._call(op, retry=True)

    async def set_tags(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                       tags: Mapping[str, str]) -> None:
        """Journal ``entry`` and replace the run's tags, atomically (fenced). Retried after a
        lost connection: writing the same entry and tags again is idempotent."""
        params = entry_params(run_id, epoch, worker, entry)
        params.update(tag_keys=list(tags), tag_values=list(tags.values()),
                      tags=json.dumps(dict(tags), separators=(",", ":")) if tags else None)
        lock = self._args("set_tags_lock", params)

        async def op(conn: Connection, retrying: bool) -> None:
            async with conn.transaction():
                created_at = await conn.fetchval(*lock)
                if created_at is None:
                    raise lost(run_id, epoch)
                await conn.fetchrow(*self._args("set_tags", {**params,
                                                             "created_at": created_at}))

        await self._call(op, retry=True)
