"""The SQLite adapter's half for schedules (rows that any worker fires; see schedules.sql).

A mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`. A firing is one operation
on the connection thread, so its compare-and-set, the runs it starts and the cancellation an
overlap policy asks for commit together or not at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from perdure.storage.port import NewRun, ScheduleFiring, ScheduleRow
from perdure.storage.sqlite.flow import run_params

__all__ = ["SqliteSchedules", "schedule_params", "schedule_row"]


def schedule_params(row: ScheduleRow) -> dict[str, Any]:
    """Parameters of ``insert_schedule`` and ``replace_schedule``."""
    return {"id": row.id, "workflow": row.workflow, "version": row.version, "input": row.input,
            "cron": row.cron, "timezone": row.timezone, "overlap": row.overlap,
            "catchup": float(row.catchup), "next_due": row.next_due,
            "now": float(row.updated_at)}


def schedule_row(r: Sequence[Any]) -> ScheduleRow:
    """A row of the schedule selects (the last run's status last)."""
    return ScheduleRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], float(r[7]), bool(r[8]), r[9],
                       r[10], r[11], r[12], int(r[13]), int(r[14]), int(r[15]), int(r[16]),
                       r[17], r[18], r[19])


class SqliteSchedules:
    """Schedules on SQLite (see the storage port)."""

    if TYPE_CHECKING:
        _q: dict[str, str]

        def _submit(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                    ) -> asyncio.Future[Any]: ...

        def _read(self, name: str, params: dict[str, Any], *, many: bool = True
                  ) -> asyncio.Future[Any]: ...

        def _write(self, name: str, params: dict[str, Any], *, fenced: bool = False,
                   returning: bool = False) -> asyncio.Future[Any]: ...

    async def insert_schedule(self, row: ScheduleRow) -> bool:
        """Create the schedule unless its id exists."""
        return bool(await self._write("insert_schedule", schedule_params(row)))

    async def replace_schedule(self, row: ScheduleRow, revision: int) -> bool:
        """Replace its spec if the revision is still ``revision``."""
        params = {**schedule_params(row), "revision": revision}
        return bool(await self._write("replace_schedule", params))

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        """One schedule, or None."""
        row = await self._read("get_schedule", {"id": schedule_id}, many=False)
        return None if row is None else schedule_row(row)

    async def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by id."""
        return [schedule_row(r) for r in await self._read("list_schedules", {})]

    async def pause_schedule(self, schedule_id: str, now: float) -> bool:
        """Pause it."""
        return bool(await self._write("pause_schedule", {"id": schedule_id, "now": now}))

    async def resume_schedule(self, schedule_id: str, next_due: float | None,
                              now: float) -> bool:
        """Unpause it from ``next_due`` on."""
        return bool(await self._write("resume_schedule", {"id": schedule_id, "now": now,
                                                          "next_due": next_due}))

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete it."""
        return bool(await self._write("delete_schedule", {"id": schedule_id}))

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        """Schedules with a slot due now, or a buffered slot free to fire."""
        rows = await self._read("due_schedules", {"now": now, "limit": limit})
        return [schedule_row(r) for r in rows]

    async def next_schedule_due(self) -> tuple[float | None, bool]:
        """The earliest next_due of the unpaused schedules, and whether one has a buffered
        slot."""
        row = await self._read("next_schedule_due", {}, many=False)
        return row[0], bool(row[1])

    async def fire_schedule(self, schedule_id: str, revision: int, firing: ScheduleFiring,
                            runs: Sequence[NewRun], cancel: Sequence[str],
                            now: float) -> list[str] | None:
        """Compare-and-set the schedule, start the runs and flag the cancellations, in one
        transaction."""
        q = self._q
        params = {"id": schedule_id, "revision": revision, "next_due": firing.next_due,
                  "buffered_at": firing.buffered_at, "last_run_id": firing.last_run_id,
                  "last_slot": firing.last_slot, "fired": firing.fired,
                  "missed": firing.skipped_missed, "overlapped": firing.skipped_overlap,
                  "now": now}

        def op(conn: sqlite3.Connection) -> list[str] | None:
            if conn.execute(q["fire_schedule"], params).rowcount == 0:
                return None
            for run in runs:
                conn.execute(q["insert_run"], run_params(run))
            flagged: list[str] = []
            for run_id in cancel:
                flagged += [r[0] for r in conn.execute(q["request_cancel"],
                                                       {"run_id": run_id, "now": now})]
            return flagged

        result: list[str] | None = await self._submit(op, write=True)
        return result

    async def insert_runs(self, runs: Sequence[NewRun]) -> list[str]:
        """Create the runs that do not exist yet, in one transaction."""
        insert = self._q["insert_run"]

        def op(conn: sqlite3.Connection) -> list[str]:
            return [run.id for run in runs
                    if conn.execute(insert, run_params(run)).rowcount]

        result: list[str] = await self._submit(op, write=True)
        return result
