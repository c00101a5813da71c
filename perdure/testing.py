"""Test support for users' suites (and ours): a controllable clock and waiting on run states.

Pass a :class:`VirtualClock` as ``Engine(..., clock=clock)``; ``clock.advance(timedelta(days=3))``
then fires every back-off, lease expiry and timer that falls due, with no real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from perdure.clock import VirtualClock
from perdure.engine.handle import WorkflowHandle
from perdure.errors import RunNotFound
from perdure.records import JournalEntry, RunInfo, RunStatus

__all__ = ["VirtualClock", "wait_for_journal", "wait_for_status"]


async def wait_for_status(handle: WorkflowHandle[Any], *statuses: RunStatus | str,
                          timeout: float = 10.0) -> RunInfo:
    """Wait until the run is in one of ``statuses``."""
    wanted = {RunStatus(s) for s in statuses}
    info, _ = await _wait(handle, lambda i, _j: i.status in wanted, timeout,
                          f"status {'/'.join(sorted(wanted))}")
    return info


async def wait_for_journal(handle: WorkflowHandle[Any],
                           check: Callable[[list[JournalEntry]], bool],
                           timeout: float = 10.0) -> list[JournalEntry]:
    """Wait until ``check(journal)`` holds."""
    _, journal = await _wait(handle, lambda _i, j: check(j), timeout, "the journal condition")
    return journal


async def _wait(handle: WorkflowHandle[Any],
                check: Callable[[RunInfo, list[JournalEntry]], bool], timeout: float,
                what: str) -> tuple[RunInfo, list[JournalEntry]]:
    # Woken by the engine whenever it settles the run in this process (park, finish, block);
    # re-checked with a short back-off for runs driven by other processes.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.002
    with handle._engine.settled_event(handle.id) as settled:
        while True:
            settled.clear()
            try:
                info = await handle.status()
                journal = await handle.journal()
            except RunNotFound:  # not created yet (a child): keep waiting
                state = "not created"
            else:
                if check(info, journal):
                    return info, journal
                state = info.status
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"run {handle.id!r} ({state}) did not reach {what} "
                                   f"within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), min(delay, remaining))
            delay = min(delay * 2, 0.1)


try:  # the pytest fixture, when pytest is present
    import pytest

    @pytest.fixture
    def perdure_clock() -> Iterator[VirtualClock]:
        """A virtual clock for an engine under test: ``Engine(..., clock=perdure_clock)``."""
        yield VirtualClock()

    __all__ += ["perdure_clock"]
except ImportError:  # pragma: no cover
    pass
