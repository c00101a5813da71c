"""Test support for users' suites (and ours): a controllable clock, waiting on run states, and
replaying exported journals against new code.

Pass a :class:`VirtualClock` as ``Engine(..., clock=clock)``; ``clock.advance(timedelta(days=3))``
then fires every back-off, lease expiry and timer that falls due, with no real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from perdure.clock import VirtualClock
from perdure.engine.handle import WorkflowHandle
from perdure.engine.histories import load_paths
from perdure.engine.replay import ReplayReport, replay_runs
from perdure.errors import RunNotFound
from perdure.records import JournalEntry, RunInfo, RunStatus
from perdure.workflow.definitions import Workflow

__all__ = ["ReplayReport", "VirtualClock", "replay", "wait_for_journal", "wait_for_status"]


def replay(workflows: Workflow[Any, Any] | Iterable[Workflow[Any, Any]],
           paths: str | Path | Iterable[str | Path]) -> ReplayReport:
    """Replay the journals exported by ``perdure runs export`` (files, or directories of
    ``*.json`` files) against the current code of ``workflows``, executing nothing.

    Every run of these workflows' names is replayed (against the given workflow of its exact
    version if there is one, else its name's default version); runs of other workflows are
    skipped (pass the workflows their runs start as children too: a child start replays only
    for a registered workflow, as on a worker). Raises ``ReplayMismatch`` naming the run, the
    seq and what differs at the first run the code does not replay (a reordered, renamed,
    added or removed operation, a payload the current types cannot decode, a different
    ending), and ``JournalFormatError`` for a file that is not an export of a known format
    version. Returns what was replayed.

    Blocking; from a running event loop (an async test) it runs on a thread of its own.
    """
    runs = load_paths(paths)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(replay_runs(workflows, runs))
    outcome: list[ReplayReport] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(replay_runs(workflows, runs)))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="perdure-replay")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


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
