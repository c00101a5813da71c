"""Lifecycle logs: one structured line per run event on ``perdure.runs``, on both backends.

Each record carries its fields as the ``perdure`` attribute (what the JSON format writes) and
in its message as ``key=value`` pairs (what the text format shows).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import RetryPolicy, RunStatus, VirtualClock, WorkflowFailed, step, workflow
from perdure.errors import RunBlocked, RunCancelled
from perdure.testing import wait_for_status

_gate: dict[str, asyncio.Event] = {}


@step
async def wait_at_gate(name: str) -> str:
    """Blocks until the test opens the gate (a step in flight when a worker stops)."""
    await _gate.setdefault(name, asyncio.Event()).wait()
    return name


@step(retry=RetryPolicy(max_attempts=1))
async def explode() -> None:
    raise KeyError("no such order")


@workflow
async def nap() -> str:
    await perdure.sleep(timedelta(hours=2))
    return "up"


@workflow
async def crash() -> None:
    await explode()


@workflow
async def gated(name: str) -> str:
    return await wait_at_gate(name)


@workflow
async def orphan() -> None:
    await perdure.start_child(nap)  # not registered on the worker: blocks


@pytest.fixture(autouse=True)
def _gates() -> None:
    _gate.clear()


def events(caplog: pytest.LogCaptureFixture, run_id: str) -> list[dict[str, Any]]:
    return [dict(r.perdure) for r in caplog.records  # type: ignore[attr-defined]
            if r.name == "perdure.runs" and getattr(r, "perdure", {}).get("run_id") == run_id]


def names(caplog: pytest.LogCaptureFixture, run_id: str) -> list[str]:
    return [e["event"] for e in events(caplog, run_id)]


async def test_a_parked_run_logs_claimed_parked_resumed_completed(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="perdure.runs")
    clock = VirtualClock()
    engine = await make_engine(nap, clock=clock)
    handle = await engine.start(nap, id="napper")
    await wait_for_status(handle, RunStatus.WAITING)
    clock.advance(timedelta(hours=2))
    assert await handle.result(timeout=20) == "up"

    started, claimed, parked, resumed, completed = events(caplog, "napper")
    assert started == {"event": "started", "run_id": "napper", "workflow": "nap",
                       "version": "1", "seq": 0}
    base = {"run_id": "napper", "workflow": "nap", "version": "1", "worker": engine.worker_id}
    assert claimed == {**base, "event": "claimed", "seq": 0, "epoch": 1}
    assert parked == {**base, "event": "parked", "seq": 1, "epoch": 1,
                      "reason": "sleep until 2030-01-01T02:00:00",
                      "wake_at": "2030-01-01T02:00:00.000Z"}
    assert resumed == {**base, "event": "resumed", "seq": 1, "epoch": 2}
    assert completed == {**base, "event": "completed", "seq": 1, "epoch": 2}
    # The text format: the same fields as key=value pairs.
    [line] = [r.getMessage() for r in caplog.records if r.name == "perdure.runs"
              and getattr(r, "perdure", {}).get("event") == "parked"]
    assert line == (f"parked run_id=napper workflow=nap version=1 seq=1 "
                    f"worker={engine.worker_id} epoch=1 "
                    f'reason="sleep until 2030-01-01T02:00:00" wake_at=2030-01-01T02:00:00.000Z')


async def test_failed_blocked_and_cancelled_runs_say_why(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="perdure.runs")
    engine = await make_engine(crash, nap)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(crash, id="crasher")).result(timeout=20)
    *_, failed = events(caplog, "crasher")
    assert failed["event"] == "failed"
    assert (failed["error_type"], failed["error"]) == \
        ("perdure.errors.StepFailed", "step 'explode' failed after 1 attempt(s): "
                                      "KeyError: 'no such order'")

    registered_without_child = await make_engine(orphan)
    with pytest.raises(RunBlocked):
        await (await registered_without_child.start(orphan, id="orphaned")).result(timeout=20)
    blocked = [r for r in caplog.records
               if getattr(r, "perdure", {}).get("run_id") == "orphaned"
               and r.perdure["event"] == "blocked"]  # type: ignore[attr-defined]
    assert blocked and all(r.levelno == logging.WARNING for r in blocked)
    assert "not registered on this worker" in blocked[0].perdure["reason"]  # type: ignore[attr-defined]

    handle = await engine.start(nap, id="sleeper")
    await wait_for_status(handle, RunStatus.WAITING)
    await handle.cancel()
    with pytest.raises(RunCancelled):
        await handle.result(timeout=20)
    assert names(caplog, "sleeper") == ["started", "claimed", "parked", "resumed",
                                        "cancelled"]


async def test_a_drained_run_is_handed_back_and_resumed_elsewhere(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="perdure.runs")
    first = await make_engine(gated)
    handle = await first.start(gated, "g", id="drained")
    await wait_for_status(handle, RunStatus.RUNNING)
    while "g" not in _gate:  # the step is executing
        await asyncio.sleep(0.001)
    await first.close(grace=0)
    second = await make_engine(gated)
    _gate["g"].set()
    assert await second.handle("drained").result(timeout=20) == "g"
    assert names(caplog, "drained") == ["started", "claimed", "handed_back", "resumed",
                                        "completed"]
    assert [e["worker"] for e in events(caplog, "drained")[1:]] == \
        [first.worker_id] * 2 + [second.worker_id] * 2


async def test_a_run_of_a_dead_worker_is_logged_as_recovered(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="perdure.runs")
    clock = VirtualClock()
    first = await make_engine(gated, clock=clock)
    handle = await first.start(gated, "r", id="orphaned-by-crash")
    while "r" not in _gate:
        await asyncio.sleep(0.001)
    await first.abort()  # as a crash: nothing more is written
    second = await make_engine(gated, clock=clock)
    _gate["r"].set()
    clock.advance(first.lease + 1)  # the dead worker's lease lapses
    assert await second.handle(handle.id).result(timeout=20) == "r"
    *_, recovered, completed = events(caplog, "orphaned-by-crash")
    assert (recovered["event"], recovered["worker"], recovered["epoch"]) == \
        ("recovered", second.worker_id, 2)
    assert completed["event"] == "completed"
