"""The SQLite adapter's part for finding runs: the filtered, keyset-paged runs list, and tags.

A mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`, kept apart so the adapter's
core stays small; its SQL is in ``listing.sql``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from perdure.records import JournalEntry, RunRow
from perdure.storage.params import entry_params, lost
from perdure.storage.port import RunQuery

#: the statuses in ``runs_in_flight`` (a rare one is found without walking the history)
UNFINISHED = frozenset({"pending", "running", "waiting", "blocked", "paused"})

__all__ = ["SqliteListing", "in_flight", "run_row"]


def in_flight(query: RunQuery) -> bool:
    """Whether ``query`` asks for unfinished statuses only, without a parent, tag or queue filter
    (whose own indexes drive better): then each status is a range of ``runs_in_flight``."""
    return (bool(query.statuses) and UNFINISHED.issuperset(query.statuses)
            and query.parent_id is None and not query.tags and query.queue is None)


def run_row(r: Sequence[Any]) -> RunRow:
    """A runs row, as ``get_run`` and the list queries select it."""
    return RunRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                  r[12], r[13], bool(r[14]), r[15], r[16], r[17], r[18], bool(r[19]), r[20],
                  r[21], r[22], r[23], r[24], r[25],
                  None if r[26] is None else json.loads(r[26]))


class SqliteListing:
    """The runs list and tags on SQLite (see the storage port)."""

    if TYPE_CHECKING:
        _q: dict[str, str]

        def _submit(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                    ) -> asyncio.Future[Any]: ...

        def _read(self, name: str, params: dict[str, Any], *, many: bool = True
                  ) -> asyncio.Future[Any]: ...

        def _write(self, name: str, params: dict[str, Any], *, fenced: bool = False,
                   returning: bool = False) -> asyncio.Future[Any]: ...

    # -- the runs list ----------------------------------------------------------------------

    def _list_query(self, query: RunQuery) -> tuple[str, dict[str, Any]]:
        """The query that walks the best index for ``query``, and its parameters."""
        params: dict[str, Any] = {
            "statuses": json.dumps(list(query.statuses)) if query.statuses else None,
            "workflow": query.workflow, "version": query.version,
            "parent_id": query.parent_id, "queue": query.queue,
            "tags": json.dumps(dict(query.tags)) if query.tags else None,
            "before_at": query.before_at, "before_id": query.before_id,
            "after_at": query.after_at, "limit": query.limit,
            "tag_key": query.tags[0][0] if query.tags else None,
            "tag_value": query.tags[0][1] if query.tags else None,
        }
        if query.parent_id is not None:
            return self._q["list_runs_children"], params
        if query.tags:
            return self._q["list_runs_tagged"], params
        if query.queue is not None:
            return self._q["list_runs_queued"], params
        return self._q["list_runs"], params

    def _queries(self, query: RunQuery) -> list[tuple[str, dict[str, Any]]]:
        """The statements that answer ``query``: one, or one per status when only
        unfinished statuses are asked for (each a range of ``runs_in_flight``)."""
        if in_flight(query):
            params = self._list_query(query)[1]
            sql = self._q["list_runs_unfinished"]
            return [(sql, {**params, "status": s}) for s in query.statuses]
        return [self._list_query(query)]

    async def list_runs(self, query: RunQuery) -> list[RunRow]:
        """Up to ``query.limit`` matching runs, newest first."""
        statements = self._queries(query)

        def op(conn: sqlite3.Connection) -> list[Any]:
            rows = [r for sql, params in statements for r in conn.execute(sql, params)]
            if len(statements) > 1:  # merge the statuses' pages: newest first, id breaks ties
                rows.sort(key=lambda r: (r[15], r[0]), reverse=True)
            return rows[:query.limit]

        rows = await self._submit(op, write=False)
        return [run_row(r) for r in rows]

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match (the list query without its limit, counted)."""
        counts = [(f"SELECT count(*) FROM ({sql})", {**params, "limit": -1})  # -1: no limit
                  for sql, params in self._queries(query)]

        def op(conn: sqlite3.Connection) -> int:
            return sum(int(conn.execute(sql, params).fetchone()[0]) for sql, params in counts)

        result: int = await self._submit(op, write=False)
        return result

    # -- tags -------------------------------------------------------------------------------

    def _insert_tags(self, conn: sqlite3.Connection, params: Mapping[str, Any]) -> None:
        """A new run's tags (``insert_run``'s parameters), in the caller's transaction."""
        if params.get("tags"):
            conn.execute(self._q["insert_tags"], params)

    async def set_tags(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                       tags: Mapping[str, str]) -> None:
        """Journal ``entry`` and replace the run's tags, atomically (fenced)."""
        q = self._q
        text = json.dumps(dict(tags), separators=(",", ":")) if tags else None

        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute(q["tag_owner"], {"run_id": run_id, "epoch": epoch,
                                                "worker": worker}).fetchone()
            if row is None or conn.execute(
                    q["put_entry"], entry_params(run_id, epoch, worker, entry)).rowcount == 0:
                raise lost(run_id, epoch)
            conn.execute(q["clear_tags"], {"run_id": run_id})
            conn.execute(q["insert_tags"], {"id": run_id, "tags": text or "{}", "now": row[0]})
            conn.execute(q["replace_tags"], {"run_id": run_id, "tags": text})

        await self._submit(op, write=True)
