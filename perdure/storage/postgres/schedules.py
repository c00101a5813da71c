"""The PostgreSQL adapter's half for schedules (rows that any worker fires; see schedules.sql).

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`. A firing is one
transaction on one connection: the compare-and-set on the schedule's revision, then the runs
it starts and the cancellation an overlap policy asks for.

Retries after a lost connection: every write here is safe to repeat. A firing whose first
attempt committed finds the revision moved and writes nothing (its runs exist); inserts of
runs and schedules skip existing ids; pause, resume and delete are idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.storage.params import new_run_params
from perdure.storage.port import NewRun, ScheduleFiring, ScheduleRow

if TYPE_CHECKING:
    from perdure.storage.postgres.pool import Connection

__all__ = ["PostgresSchedules"]

T = TypeVar("T")


def _params(row: ScheduleRow) -> dict[str, Any]:
    return {"id": row.id, "workflow": row.workflow, "version": row.version, "input": row.input,
            "cron": row.cron, "timezone": row.timezone, "overlap": row.overlap,
            "catchup": float(row.catchup), "next_due": row.next_due,
            "now": float(row.updated_at)}


def _row(r: Any) -> ScheduleRow:
    return ScheduleRow(*r)


class PostgresSchedules:
    """Schedules on PostgreSQL (see the storage port)."""

    if TYPE_CHECKING:
        def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]: ...

        async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                        retry: bool) -> T: ...

        async def _fetch(self, name: str, params: Mapping[str, Any], *,
                         retry: bool = True) -> list[Any]: ...

        async def _fetchrow(self, name: str, params: Mapping[str, Any], *,
                            retry: bool = True) -> Any: ...

    async def insert_schedule(self, row: ScheduleRow) -> bool:
        """Create the schedule unless its id exists (and wake the workers)."""
        return bool((await self._fetchrow("insert_schedule", _params(row)))["created"])

    async def replace_schedule(self, row: ScheduleRow, revision: int) -> bool:
        """Replace its spec if the revision is still ``revision`` (and wake the workers).
        A retry whose first attempt committed answers False; the caller re-reads."""
        found = await self._fetchrow("replace_schedule", {**_params(row), "revision": revision})
        return bool(found["replaced"])

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        """One schedule, or None."""
        row = await self._fetchrow("get_schedule", {"id": schedule_id})
        return None if row is None else _row(row)

    async def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by id."""
        return [_row(r) for r in await self._fetch("list_schedules", {})]

    async def pause_schedule(self, schedule_id: str, now: float) -> bool:
        """Pause it."""
        return bool(await self._fetch("pause_schedule", {"id": schedule_id, "now": float(now)}))

    async def resume_schedule(self, schedule_id: str, next_due: float | None,
                              now: float) -> bool:
        """Unpause it from ``next_due`` on (and wake the workers)."""
        row = await self._fetchrow("resume_schedule", {"id": schedule_id, "now": float(now),
                                                       "next_due": next_due})
        return bool(row["resumed"])

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete it. A retry whose first attempt committed answers False."""
        return bool(await self._fetch("delete_schedule", {"id": schedule_id}))

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        """Schedules with a slot due now, or a buffered slot free to fire."""
        rows = await self._fetch("due_schedules", {"now": float(now), "limit": limit})
        return [_row(r) for r in rows]

    async def next_schedule_due(self) -> tuple[float | None, bool]:
        """The earliest next_due of the unpaused schedules, and whether one has a buffered
        slot."""
        row = await self._fetchrow("next_schedule_due", {})
        return (None if row[0] is None else float(row[0])), bool(row[1])

    async def fire_schedule(self, schedule_id: str, revision: int, firing: ScheduleFiring,
                            runs: Sequence[NewRun], cancel: Sequence[str],
                            now: float) -> list[str] | None:
        """Compare-and-set the schedule, start the runs and flag the cancellations, in one
        transaction."""
        fire = self._args("fire_schedule", {
            "id": schedule_id, "revision": revision, "next_due": firing.next_due,
            "buffered_at": firing.buffered_at, "last_run_id": firing.last_run_id,
            "last_slot": firing.last_slot, "fired": firing.fired,
            "missed": firing.skipped_missed, "overlapped": firing.skipped_overlap,
            "now": float(now)})
        inserts = [self._args("insert_run", new_run_params(run)) for run in runs]
        cancels = [(self._args("cancel_lock", {"run_id": rid}),
                    self._args("request_cancel", {"run_id": rid, "now": float(now)}))
                   for rid in cancel]

        async def op(conn: Connection, retrying: bool) -> list[str] | None:
            async with conn.transaction():
                if await conn.fetchval(*fire) is None:
                    return None
                for insert in inserts:
                    await conn.fetchrow(*insert)
                flagged: list[str] = []
                for lock, flag in cancels:
                    if await conn.fetchval(*lock) is not None:
                        flagged += [r[0] for r in await conn.fetch(*flag)]
                return flagged

        return await self._call(op, retry=True)

    async def insert_runs(self, runs: Sequence[NewRun]) -> list[str]:
        """Create the runs that do not exist yet, in one transaction."""
        inserts = [(run.id, self._args("insert_run", new_run_params(run))) for run in runs]

        async def op(conn: Connection, retrying: bool) -> list[str]:
            created: list[str] = []
            async with conn.transaction():
                for run_id, insert in inserts:
                    if (await conn.fetchrow(*insert))["created"]:
                        created.append(run_id)
            return created

        return await self._call(op, retry=True)
