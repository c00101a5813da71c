"""Helpers of the schedule contract tests: waiting on a schedule's state, an independent
oracle of Europe/Berlin's offsets, and the run ids slots get."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from perdure import Engine, ScheduleInfo

T = TypeVar("T")

# Europe/Berlin in 2030, written out by hand (not from zoneinfo or the cron library, which
# the tests check): CET (UTC+1), then CEST (UTC+2) from the last Sunday of March at 01:00 UTC
# until the last Sunday of October at 01:00 UTC.
SPRING_FORWARD = datetime(2030, 3, 31, 1, 0, tzinfo=UTC)
FALL_BACK = datetime(2030, 10, 27, 1, 0, tzinfo=UTC)


def berlin_offset(moment: datetime) -> timedelta:
    """Berlin's offset from UTC at ``moment`` (2030)."""
    return timedelta(hours=2 if SPRING_FORWARD <= moment < FALL_BACK else 1)


def utc(text: str) -> datetime:
    """``2030-03-31T01:00`` read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run_id(schedule: str, slot: datetime) -> str:
    """The id of the run that fires ``slot``."""
    return f"{schedule}@{slot.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')}Z"


async def until(check: Callable[[], Awaitable[T | None]], *, what: str,
                timeout: float = 15.0) -> T:
    """Wait until ``check()`` returns something truthy (re-checked with a short back-off:
    the state is written by the engine's worker, possibly in another process)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.002
    while True:
        found = await check()
        if found:
            return found
        if loop.time() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def fired(engine: Engine, schedule: str, count: int, *, timeout: float = 15.0
                ) -> ScheduleInfo:
    """Wait until ``schedule`` has fired at least ``count`` slots; its info."""

    async def check() -> ScheduleInfo | None:
        info = await engine.schedules.get(schedule)
        return info if info.fired >= count else None

    return await until(check, what=f"{schedule} firing {count} slot(s)", timeout=timeout)


async def run_ids(engine: Engine, prefix: str) -> list[str]:
    """The ids of the runs whose id starts with ``prefix``, sorted."""
    return sorted(r.id for r in await engine.list_runs(limit=100_000)
                  if r.id.startswith(prefix))
