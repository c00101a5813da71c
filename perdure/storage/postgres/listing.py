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

#: the statuses in ``runs_in_flight`` (a rare one is found without walking the history)
UNFINISHED = frozenset({"pending", "running", "waiting", "blocked", "paused"})

__all__ = ["PostgresListing", "in_flight"]


def in_flight(query: RunQuery) -> bool:
    """Whether ``query`` asks for unfinished statuses only, without a parent, tag or queue filter
    (whose own indexes drive better): then each status is a range of ``runs_in_flight``."""
    return (bool(query.statuses) and UNFINISHED.issuperset(query.statuses)
            and query.parent_id is None and not query.tags and query.queue is None)

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
            "version": query.version, "parent_id": query.parent_id, "queue": query.queue,
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
        if query.queue is not None:
            return "list_runs_queued", params
        return "list_runs", params

    def _queries(self, query: RunQuery) -> list[tuple[str, dict[str, Any]]]:
        """The statements that answer ``query``: one, or one per status when only
        unfinished statuses are asked for (each a range of ``runs_in_flight``)."""
        name, params = self._list_query(query)
        if in_flight(query):
            return [("list_runs_unfinished", {**params, "status": s}) for s in query.statuses]
        return [(name, params)]

    async def list_runs(self, query: RunQuery) -> list[RunRow]:
        """Up to ``query.limit`` matching runs, newest first."""
        statements = self._queries(query)
        rows = [r for name, params in statements for r in await self._fetch(name, params)]
        if len(statements) > 1:  # merge the statuses' pages: newest first, id breaks ties
            rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return [RunRow(*r) for r in rows[:query.limit]]

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match (the list query without its limit, counted)."""
        total = 0
        for name, params in self._queries(query):
            sql, *args = self._args(name, {**params, "limit": None})  # LIMIT NULL: no limit
            count = f"SELECT count(*) FROM ({sql}) AS page"

            async def op(conn: Connection, retrying: bool, count: str = count,
                         args: list[Any] = args) -> int:
                return int(await conn.fetchval(count, *args))

            total += await self._call(op, retry=True)
        return total

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
