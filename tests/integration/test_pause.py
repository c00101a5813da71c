"""Operator pause and resume: a paused run parks at its next durable await with status
``paused``, no worker claims it, and ``resume`` continues it where it stopped."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    InvalidConfiguration,
    PerdureError,
    RunNotFound,
    RunStatus,
    VirtualClock,
    step,
    workflow,
)
from perdure.cli.main import main
from perdure.testing import wait_for_journal, wait_for_status

done: list[str] = []
gate: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _clear() -> None:
    done.clear()
    gate.clear()


@step
async def work(name: str) -> str:
    if name in gate:
        await gate[name].wait()
    done.append(name)
    return name


@workflow
async def pipeline(names: list[str]) -> list[str]:
    return [await work(n) for n in names]


@workflow
async def napper() -> str:
    await work("before")
    await perdure.sleep(timedelta(hours=1))
    return await work("after")


async def test_a_parked_run_pauses_at_once_and_waits_for_resume(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(napper, clock=clock)
    handle = await engine.start(napper)
    await wait_for_status(handle, "waiting")
    assert await engine.pause(handle.id) is True
    info = await handle.status()
    assert (info.status, info.pause_requested) == (RunStatus.PAUSED, True)
    clock.advance(timedelta(hours=2))  # the timer falls due: still nobody claims it
    await asyncio.sleep(0.2)
    assert (await handle.status()).status is RunStatus.PAUSED and done == ["before"]
    await engine.resume(handle.id)
    assert await handle.result(timeout=10) == "after"
    info = await handle.status()
    assert (info.status, info.pause_requested) == (RunStatus.COMPLETED, False)


async def test_a_running_run_parks_at_its_next_durable_await(make_engine: Any) -> None:
    gate["b"] = asyncio.Event()
    engine = await make_engine(pipeline)
    handle = await engine.start(pipeline, ["a", "b", "c"])
    await wait_for_journal(handle, lambda j: len(j) == 1)  # "b" is executing now
    assert await engine.pause(handle.id) is True
    assert (await handle.status()).status is RunStatus.RUNNING  # a step is not interrupted
    gate["b"].set()
    await wait_for_status(handle, "paused")
    assert done == ["a", "b"]  # "b" finished and was journaled; "c" did not start
    assert [e.name for e in await handle.journal()] == ["work", "work"]
    await engine.resume(handle.id)
    assert await handle.result(timeout=10) == ["a", "b", "c"]
    assert done == ["a", "b", "c"]


async def test_a_pause_from_another_process_reaches_the_worker(make_engine: Any) -> None:
    gate["b"] = asyncio.Event()
    worker = await make_engine(pipeline)
    operator = await make_engine(worker=False)  # as the CLI would: another engine, no worker
    handle = await worker.start(pipeline, ["a", "b", "c"])
    await wait_for_journal(handle, lambda j: len(j) == 1)
    assert await operator.pause(handle.id) is True
    ctx = worker._worker.runner.contexts[handle.id]  # type: ignore[union-attr]
    for _ in range(400):  # the worker learns it by its cross-process wake-up
        if ctx.pause_requested:
            break
        await asyncio.sleep(0.01)
    gate["b"].set()
    await wait_for_status(handle, "paused")
    assert done == ["a", "b"]
    await operator.resume(handle.id)
    assert await handle.result(timeout=10) == ["a", "b", "c"]


async def test_a_pending_run_is_not_claimed_while_paused(make_engine: Any) -> None:
    client = await make_engine(pipeline, worker=False)
    handle = await client.start(pipeline, ["a"])
    await client.pause(handle.id)
    assert (await handle.status()).status is RunStatus.PAUSED
    await make_engine(pipeline)
    await asyncio.sleep(0.2)
    assert (await handle.status()).status is RunStatus.PAUSED and done == []
    await client.resume(handle.id)
    assert await handle.result(timeout=10) == ["a"]


async def test_resume_before_the_pause_is_reached_withdraws_it(make_engine: Any) -> None:
    gate["a"] = asyncio.Event()
    engine = await make_engine(pipeline)
    handle = await engine.start(pipeline, ["a", "b"])
    await wait_for_status(handle, "running")  # "a" is executing
    await engine.pause(handle.id)
    await engine.resume(handle.id)
    gate["a"].set()
    assert await handle.result(timeout=10) == ["a", "b"]
    assert not (await handle.status()).pause_requested


@workflow
async def inbox() -> str:
    return str(await perdure.wait_for_signal("mail"))


async def test_signals_to_a_paused_run_are_kept(make_engine: Any) -> None:
    engine = await make_engine(inbox, park_after=0.1)
    handle = await engine.start(inbox)
    await wait_for_status(handle, "waiting")
    await engine.pause(handle.id)
    await handle.signal("mail", "hello")
    await asyncio.sleep(0.2)
    assert (await handle.status()).status is RunStatus.PAUSED
    await engine.resume(handle.id)
    assert await handle.result(timeout=10) == "hello"


async def test_a_pause_survives_the_worker_dying_before_the_run_parked(
        make_engine: Any, clock: VirtualClock) -> None:
    gate["b"] = asyncio.Event()
    engine = await make_engine(pipeline, clock=clock)
    handle = await engine.start(pipeline, ["a", "b", "c"], id="dies")
    await wait_for_journal(handle, lambda j: len(j) == 1)
    await engine.pause(handle.id)
    await engine.abort()  # a crash while "b" executes: the flag is in the database
    successor = await make_engine(pipeline, clock=clock)
    clock.advance(timedelta(seconds=30))  # the dead worker's lease lapses
    gate["b"].set()
    handle = successor.handle("dies")
    await wait_for_status(handle, "paused")
    await successor.resume("dies")
    assert await handle.result(timeout=10) == ["a", "b", "c"]


async def test_bad_input(make_engine: Any) -> None:
    engine = await make_engine(pipeline)
    with pytest.raises(RunNotFound):
        await engine.pause("nope")
    with pytest.raises(InvalidConfiguration):
        await engine.pause("")
    handle = await engine.start(pipeline, ["a"])
    await handle.result(timeout=10)
    assert await engine.pause(handle.id) is False  # finished: nothing to pause
    assert (await handle.status()).pause_requested is False
    with pytest.raises(PerdureError, match="only blocked or failed runs"):
        await engine.resume(handle.id)


async def test_the_cli_pauses_and_resumes(make_engine: Any, db_url: str, capsys: Any,
                                          clock: VirtualClock) -> None:
    engine = await make_engine(napper, clock=clock)
    handle = await engine.start(napper, id="nap")
    await wait_for_status(handle, "waiting")
    assert await asyncio.to_thread(main, ["pause", "nap", "--db", db_url]) == 0
    assert "paused" in capsys.readouterr().out
    assert (await handle.status()).status is RunStatus.PAUSED
    assert await asyncio.to_thread(main, ["runs", "list", "--status", "paused", "--db",
                                          db_url]) == 0
    assert "nap" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["resume", "nap", "--db", db_url]) == 0
    await wait_for_status(handle, "waiting", "running")
    assert await asyncio.to_thread(main, ["pause", "missing", "--db", db_url]) == 2
    assert "RunNotFound" in capsys.readouterr().err
