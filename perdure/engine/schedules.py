"""``engine.schedules``: create, inspect, pause, resume, trigger, backfill and delete schedules.

A schedule is a row (see :mod:`perdure.flow.schedules`); the workers fire it
(:mod:`perdure.engine.scheduler`). Every change here is one write (with a compare-and-set
where it depends on what was read), so it is safe from any number of processes at once.
Times come from the engine's clock: the database's, as this process knows it.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from perdure import validate
from perdure.errors import InvalidConfiguration, PerdureError, ScheduleNotFound
from perdure.flow.firing import new_run, trigger_run_id
from perdure.flow.schedules import MAX_ID, Schedule, ScheduleInfo
from perdure.flow.slots import iterate, next_after, slot_run_id
from perdure.storage.port import ScheduleFiring, ScheduleRow

if TYPE_CHECKING:
    from perdure.engine.engine import Engine
    from perdure.engine.handle import WorkflowHandle

__all__ = ["MAX_BACKFILL", "Schedules"]

#: the most slots one backfill may start (split a longer range)
MAX_BACKFILL = 10_000
#: attempts of a compare-and-set that lost to concurrent writers before giving up
_ATTEMPTS = 20


class Schedules:
    """The schedules of an engine's database (``engine.schedules``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def create(self, schedule: Schedule) -> ScheduleInfo:
        """Store ``schedule``: create it, or, if a schedule with its id exists with a
        different spec, update it (a pause and the counters are kept; a new cron or time zone
        starts from the next slot after now). The same spec again changes nothing, so an
        application may create its schedules at every start.

        The workflow must be registered on this engine (``UnknownWorkflowError``); arguments
        of a schedule made with a workflow's name are encoded here (``SerializationError``,
        ``TypeError``). Nothing is written when one of them is raised.
        """
        engine = self._engine
        engine._check_open()
        if not isinstance(schedule, Schedule):
            raise InvalidConfiguration(f"create() takes a Schedule, not {schedule!r}")
        definition = engine._lookup(schedule.definition if schedule.definition is not None
                                    else schedule.workflow)
        text = schedule.input
        if text is None:
            text = definition.codec.encode_args(schedule.args, schedule.kwargs)
        store = engine.store
        for _ in range(_ATTEMPTS):
            now = engine.clock.time()
            spec = ScheduleRow(
                schedule.id, definition.name, definition.version, text, schedule.cron,
                schedule.timezone, schedule.overlap.value, schedule.catchup.total_seconds(),
                False, next_after(schedule.cron, schedule.timezone, now), None, None, None,
                0, 0, 0, 0, now, now)
            existing = await store.get_schedule(schedule.id)
            if existing is None:
                if await store.insert_schedule(spec):
                    break
                continue  # created meanwhile by another process: compare with it
            if _same_spec(existing, spec):
                break
            if (existing.cron, existing.timezone) == (spec.cron, spec.timezone):
                spec = dataclasses.replace(spec, next_due=existing.next_due)
            if await store.replace_schedule(spec, existing.revision):
                break
        else:
            raise PerdureError(f"schedule {schedule.id!r} kept changing while it was being "
                               "created; try again")
        self._changed()
        return await self.get(schedule.id)

    async def get(self, schedule_id: str) -> ScheduleInfo:
        """One schedule (``ScheduleNotFound`` if there is none)."""
        return ScheduleInfo.from_row(await self._row(schedule_id))

    async def pause(self, schedule_id: str) -> None:
        """Stop firing: no slot fires while the schedule is paused (a run already started
        goes on). ``ScheduleNotFound`` if there is none."""
        engine = self._engine
        engine._check_open()
        if not await engine.store.pause_schedule(_check_id(schedule_id), engine.clock.time()):
            raise ScheduleNotFound(schedule_id)
        self._changed()

    async def resume(self, schedule_id: str) -> None:
        """Fire again from the next slot after now (the slots that passed while it was paused
        do not fire). A schedule that was not paused is left as it is."""
        engine = self._engine
        row = await self._row(schedule_id)
        now = engine.clock.time()
        if not await engine.store.resume_schedule(row.id, next_after(row.cron, row.timezone,
                                                                     now), now):
            raise ScheduleNotFound(schedule_id)
        self._changed()

    async def trigger(self, schedule_id: str) -> WorkflowHandle[Any]:
        """Start a run of the schedule now, outside its slots (also while paused, and
        whatever its overlap policy). Later slots see it as the schedule's latest run."""
        from perdure.engine.handle import WorkflowHandle

        engine = self._engine
        for _ in range(_ATTEMPTS):
            row = await self._row(schedule_id)
            now = engine.clock.time()
            run = new_run(row, trigger_run_id(row.id), now)
            firing = ScheduleFiring(row.next_due, row.buffered_at, run.id, row.last_slot)
            if await engine.store.fire_schedule(row.id, row.revision, firing, [run], [],
                                                now) is not None:
                self._changed()
                return WorkflowHandle(engine, run.id)
        raise PerdureError(f"schedule {schedule_id!r} kept changing while it was being "
                           "triggered; try again")

    async def backfill(self, schedule_id: str, start: datetime, end: datetime
                       ) -> list[WorkflowHandle[Any]]:
        """Start the runs of every slot from ``start`` (inclusive) to ``end`` (exclusive),
        aware datetimes, whatever the overlap policy and also while paused. A slot that
        already has its run (fired or backfilled before) is left alone, so a backfill can be
        repeated. Returns a handle per slot, oldest first; at most ``MAX_BACKFILL`` slots
        (``InvalidConfiguration``, nothing written)."""
        from perdure.engine.handle import WorkflowHandle

        engine = self._engine
        first, last = _moment(start, "start"), _moment(end, "end")
        if first >= last:
            raise InvalidConfiguration(f"backfill start ({start}) must be before its end "
                                       f"({end})")
        row = await self._row(schedule_id)
        found: list[float] = []
        # Slots are whole seconds (cronsim drops fractions): stepping from the second before
        # ``start`` includes a slot at ``start``.
        for slot in iterate(row.cron, row.timezone, math.floor(first) - 1):
            if slot < first:
                continue
            if slot >= last:
                break
            if len(found) == MAX_BACKFILL:
                raise InvalidConfiguration(
                    f"backfill from {start} to {end} covers more than {MAX_BACKFILL} slots of "
                    f"schedule {row.id!r}; split the range")
            found.append(slot)
        now = engine.clock.time()
        runs = [new_run(row, slot_run_id(row.id, slot), now) for slot in found]
        if runs and await engine.store.insert_runs(runs):
            self._changed()
        return [WorkflowHandle(engine, run.id) for run in runs]

    async def delete(self, schedule_id: str) -> bool:
        """Delete the schedule (its runs stay); False if there was none."""
        engine = self._engine
        engine._check_open()
        deleted = await engine.store.delete_schedule(_check_id(schedule_id))
        if deleted:
            self._changed()
        return deleted

    # Last: in the class body, ``list`` names this method from here on.
    async def list(self) -> list[ScheduleInfo]:
        """Every schedule, by id."""
        self._engine._check_open()
        return [ScheduleInfo.from_row(r) for r in await self._engine.store.list_schedules()]

    async def _row(self, schedule_id: str) -> ScheduleRow:
        self._engine._check_open()
        row = await self._engine.store.get_schedule(_check_id(schedule_id))
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return row

    def _changed(self) -> None:
        """A schedule changed here, or runs were started: this process's worker (if any)
        re-reads its next due time and claims."""
        worker = self._engine._worker
        if worker is not None:
            if worker.scheduler is not None:
                worker.scheduler.invalidate()
            worker.wake.set()


def _check_id(schedule_id: object) -> str:
    return validate.name(schedule_id, "schedule id", max_length=MAX_ID)


def _moment(value: object, what: str) -> float:
    if not isinstance(value, datetime):
        raise InvalidConfiguration(f"backfill {what} must be a datetime, not "
                                   f"{type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidConfiguration(f"backfill {what} must be an aware datetime (with a tzinfo)")
    return value.timestamp()


def _same_spec(a: ScheduleRow, b: ScheduleRow) -> bool:
    return ((a.workflow, a.version, a.input, a.cron, a.timezone, a.overlap, a.catchup)
            == (b.workflow, b.version, b.input, b.cron, b.timezone, b.overlap, b.catchup))
