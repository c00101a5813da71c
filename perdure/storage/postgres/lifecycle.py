"""The PostgreSQL adapter's part for a run's life beyond executing it: an operator's resume
and its history, continue-as-new and its incarnations, forks, pauses, and the runs no live
worker serves.

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`; its SQL is in
``queries.sql``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.records import IncarnationRow, JournalEntry, ResumeRow, RunRow
from perdure.storage.params import history_rows, incarnation_rows, lost
from perdure.storage.postgres.pool import Connection

__all__ = ["PostgresLifecycle"]

T = TypeVar("T")


class PostgresLifecycle:
    """Resumes, continue-as-new, forks, pauses and stranded runs on PostgreSQL (see the
    storage port)."""

    if TYPE_CHECKING:
        def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]: ...

        async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                        retry: bool) -> T: ...

        async def _fetch(self, name: str, params: Mapping[str, Any], *,
                         retry: bool = True) -> list[Any]: ...

        async def _fetchrow(self, name: str, params: Mapping[str, Any], *,
                            retry: bool = True) -> Any: ...

    async def admin_transition(self, run_id: str, *, from_status: str, to_status: str,
                               supersede: Sequence[int], new_generation: bool,
                               now: float) -> bool:
        """Requeue a run for an operator, atomically: record the resume, move the superseded
        journal entries to the history, and (``new_generation``) start a new generation. A
        retry after a lost acknowledgement finds the run moved and records nothing twice."""
        params = {"run_id": run_id, "status": to_status, "from_status": from_status,
                  "now": float(now), "seqs": list(supersede), "bump": int(new_generation)}
        move, applied = self._args("admin_transition", params), self._args("admin_applied",
                                                                          params)

        async def op(conn: Connection, retrying: bool) -> bool:
            row = await conn.fetchrow(*move)
            if row["moved"]:
                return True
            return bool(retrying and await conn.fetchval(*applied))

        return await self._call(op, retry=True)

    async def load_history(self, run_id: str) -> list[tuple[ResumeRow, list[JournalEntry]]]:
        """The run's resumes, oldest first, each with the journal entries it superseded."""
        resumes = await self._fetch("load_resumes", {"run_id": run_id})
        entries = await self._fetch("load_superseded", {"run_id": run_id})
        return history_rows(resumes, entries)

    async def continue_run(self, run_id: str, epoch: int, worker: str, *, version: str,
                           input: str, now: float) -> None:
        """Continue-as-new in one statement (fenced). A retry after a lost acknowledgement
        first checks whether the first attempt committed."""
        params = {"run_id": run_id, "epoch": epoch, "worker": worker, "version": version,
                  "input": input, "now": float(now)}
        move = self._args("continue_run", params)
        applied = self._args("continue_applied", params)

        async def op(conn: Connection, retrying: bool) -> None:
            row = await conn.fetchrow(*move)
            if row["moved"]:
                return
            if retrying and await conn.fetchval(*applied):
                return
            raise lost(run_id, epoch)

        await self._call(op, retry=True)

    async def load_incarnations(self, run_id: str
                                ) -> list[tuple[IncarnationRow, list[JournalEntry]]]:
        """The incarnations that continued as new, oldest first, with their journals."""
        rows = await self._fetch("load_incarnations", {"run_id": run_id})
        entries = await self._fetch("load_incarnation_entries", {"run_id": run_id})
        return incarnation_rows(rows, entries)

    async def fork_run(self, source_id: str, new_id: str, *, upto_seq: int,
                       now: float) -> bool:
        """Create the fork and copy the journal before ``upto_seq``, in one statement. A
        retry of a committed fork answers False (the id exists); the engine then recognises
        its own fork."""
        row = await self._fetchrow("fork_run", {"id": new_id, "source": source_id,
                                                "upto": upto_seq, "now": float(now)})
        return bool(row["created"])

    async def request_pause(self, run_id: str, now: float) -> str | None:
        """Pause a pending or parked run now; flag a running one (idempotent)."""
        row = await self._fetchrow("request_pause", {"run_id": run_id, "now": float(now)})
        return None if row is None else str(row["status"])

    async def unpause(self, run_id: str, now: float) -> bool:
        """Resume a paused run, or withdraw a pause request. A retry of a committed one
        answers False: the run is no longer paused either way."""
        row = await self._fetchrow("unpause", {"run_id": run_id, "now": float(now)})
        return row is not None

    async def stranded_runs(self, *, live_after: float, workflow: str | None,
                            limit: int) -> list[RunRow]:
        """Unfinished runs no live worker serves."""
        rows = await self._fetch("stranded_runs", {"live_after": float(live_after),
                                                   "workflow": workflow, "limit": limit})
        return [RunRow(*r) for r in rows]

    async def stranded_summary(self, *, live_after: float) -> list[tuple[str, str, int]]:
        """Stranded runs counted by workflow and version."""
        rows = await self._fetch("stranded_summary", {"live_after": float(live_after)})
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def served_keys(self, *, live_after: float) -> list[str]:
        """What the live workers serve."""
        return [str(r[0]) for r in await self._fetch("served_keys",
                                                     {"live_after": float(live_after)})]
