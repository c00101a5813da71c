"""The synchronous façade: the async engine underneath, for code without an event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import perdure
from perdure import CallbackAlreadyCompleted, PerdureError, RunStatus, SyncEngine, step, workflow
from perdure.testing import wait_for_journal


@step
def add(a: int, b: int) -> int:
    return a + b


@workflow
async def adder(a: int, b: int) -> int:
    return await add(a, b)


def test_sync_engine_start_result_status_journal(db_url: str) -> None:
    with SyncEngine(db_url, workflows=[adder]) as engine:
        handle = engine.start(adder, 2, 3, id="sum")
        assert handle.result(timeout=10) == 5
        assert handle.status().status is RunStatus.COMPLETED
        assert [e.name for e in handle.journal()] == ["add"]
        assert engine.handle("sum").result() == 5
        assert [r.id for r in engine.list_runs()] == ["sum"]
        assert engine.start(adder, 9, 9, id="sum").result() == 5  # idempotent start


def test_sync_engine_must_be_open(db_url: str) -> None:
    engine = SyncEngine(db_url, workflows=[adder])
    with pytest.raises(PerdureError, match="not open"):
        engine.start(adder, 1, 2)


@workflow
async def chatty(words: list[str]) -> int:
    await perdure.set_event("count", len(words))
    async with perdure.stream("words") as out:
        for word in words:
            await out.write(word)
    req = await perdure.wait_for_request("double")
    await req.reply(req.payload * 2)
    cb = await perdure.callback()
    await perdure.set_event("token", cb.token)
    return int(await cb.wait())


def test_sync_engine_talks_to_runs(db_url: str) -> None:
    with SyncEngine(db_url, workflows=[chatty]) as engine:
        handle = engine.start(chatty, ["a", "b", "c"])
        assert handle.get_event("count", timeout=10) == 3
        assert list(handle.read_stream("words")) == ["a", "b", "c"]
        assert list(handle.read_stream("words", offset=2)) == ["c"]
        assert handle.request("double", 21, timeout=10) == 42
        token = handle.get_event("token", timeout=10)
        engine.complete_callback(token, 7)
        with pytest.raises(CallbackAlreadyCompleted):
            engine.fail_callback(token, "late")
        assert handle.result(timeout=10) == 7
        assert handle.events() == {"count": 3, "token": token}


async def test_closing_the_engine_ends_a_waiting_reader(make_engine: Any) -> None:
    engine = await make_engine(chatty)
    handle = await engine.start(chatty, [])
    reader = asyncio.create_task(handle.get_event("never"))
    await wait_for_journal(handle, lambda j: any(e.kind == "request" for e in j) or
                           any(e.kind == "stream_close" for e in j))
    await engine.close()
    with pytest.raises(PerdureError, match="not open"):
        await asyncio.wait_for(reader, 10)

def test_sync_engine_pauses_and_forks(db_url: str) -> None:
    with SyncEngine(db_url, workflows=[adder]) as engine:
        handle = engine.start(adder, 1, 2, id="s1")
        assert handle.result(timeout=10) == 3
        assert engine.pause("s1") is False  # finished: nothing to pause
        fork = engine.fork("s1", from_seq=1, id="s1-fork")
        assert fork.result(timeout=10) == 3
        assert fork.status().forked_from == "s1"
        assert fork.incarnations() == []
