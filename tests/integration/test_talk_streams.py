"""Published state and streams: events and streams read by clients, on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    EventTimeout,
    InvalidConfiguration,
    RunFinished,
    RunNotFound,
    SerializationError,
    StreamClosed,
    VirtualClock,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.testing import wait_for_journal, wait_for_status


@step
async def pages(doc: str) -> list[str]:
    return doc.split()


@workflow
async def ingest(doc: str) -> int:
    await perdure.set_event("progress", {"pages": 0})
    words = await pages(doc)
    async with perdure.stream("tokens") as out:
        for word in words:
            await out.write(word)
            await perdure.wait_for_signal("more")
    await perdure.set_event("progress", {"pages": len(words), "done": True})
    return len(words)


def kinds(journal: list[Any]) -> list[tuple[str, str]]:
    return [(e.kind, e.name) for e in journal]


# -- events ---------------------------------------------------------------------------------

async def test_events_are_readable_during_and_after_the_run(make_engine: Any) -> None:
    engine = await make_engine(ingest)
    handle = await engine.start(ingest, "a b")
    assert await handle.get_event("progress", timeout=10) == {"pages": 0}
    await wait_for_journal(handle, lambda j: ("stream", "tokens") in kinds(j))
    assert await handle.events() == {"progress": {"pages": 0}}
    await handle.signal("more")
    await handle.signal("more")
    assert await handle.result(timeout=10) == 2
    # Last writer wins; still readable after the run.
    assert await handle.get_event("progress") == {"pages": 2, "done": True}
    assert await handle.events() == {"progress": {"pages": 2, "done": True}}
    # Each set is journaled once, with its value.
    sets = [e.output for e in await handle.journal() if e.kind == "event"]
    assert sets == ['{"pages":0}', '{"pages":2,"done":true}']


@workflow
async def late_event() -> str:
    await perdure.wait_for_signal("go")
    await perdure.set_event("answer", 42)
    return "done"


async def test_get_event_waits_until_the_key_is_set(make_engine: Any) -> None:
    engine = await make_engine(late_event)
    handle = await engine.start(late_event)
    getter = asyncio.create_task(handle.get_event("answer", timeout=20))
    await wait_for_status(handle, "running", "waiting")
    assert not getter.done()  # (the event is set only after the signal)
    await handle.signal("go")
    assert await getter == 42
    await handle.result(timeout=10)


async def test_get_event_from_another_engine_is_pushed(make_engine: Any, db_url: str) -> None:
    """A client engine (another storage connection) is woken by the worker's write: on
    PostgreSQL by a NOTIFY on the talk channel (its safety-net poll is 30 s here, far beyond
    the test's patience), on SQLite by the data_version check."""
    worker = await make_engine(late_event)
    pushes = db_url.startswith("postgres")
    client = await make_engine(late_event, worker=False,
                               poll_interval=30.0 if pushes else 0.05)
    handle = await worker.start(late_event)
    getter = asyncio.create_task(client.handle(handle.id).get_event("answer"))
    await wait_for_status(handle, "running", "waiting")
    await handle.signal("go")
    async with asyncio.timeout(10):
        assert await getter == 42


async def test_get_event_timeout_and_finished_run(make_engine: Any) -> None:
    engine = await make_engine(late_event)
    handle = await engine.start(late_event)
    with pytest.raises(EventTimeout, match="did not set event 'answer'") as err:
        await handle.get_event("answer", timeout=0.1)
    assert isinstance(err.value, TimeoutError)
    await handle.signal("go")
    await handle.result(timeout=10)
    with pytest.raises(RunFinished, match="never set event 'other'"):
        await handle.get_event("other", timeout=5)
    assert await handle.get_event("answer", timeout=0) == 42


# -- streams --------------------------------------------------------------------------------

async def test_read_stream_is_a_live_tail_that_ends_when_closed(make_engine: Any) -> None:
    engine = await make_engine(ingest)
    handle = await engine.start(ingest, "one two three")
    items = handle.read_stream("tokens").__aiter__()
    for word in ("one", "two", "three"):
        # The next word is written only after the test signals: the reader waits live.
        assert await asyncio.wait_for(items.__anext__(), 10) == word
        await handle.signal("more")
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(items.__anext__(), 10)
    assert await handle.result(timeout=10) == 3
    # Any offset, after the run, from any reader.
    assert [w async for w in handle.read_stream("tokens", offset=1)] == ["two", "three"]
    assert [w async for w in handle.read_stream("tokens", offset=5)] == []
    assert [w async for w in handle.read_stream("nothing")] == []


@workflow
async def unclosed(n: int) -> str:
    out = perdure.stream("numbers")
    for i in range(n):
        await out.write(i)
    await perdure.wait_for_signal("finish")
    return "done"


async def test_a_stream_never_closed_ends_when_the_run_finishes(make_engine: Any) -> None:
    engine = await make_engine(unclosed)
    handle = await engine.start(unclosed, 3)
    reader = asyncio.create_task(_collect(handle.read_stream("numbers")))
    await wait_for_journal(handle, lambda j: kinds(j).count(("stream", "numbers")) == 3)
    assert not reader.done()
    await handle.signal("finish")
    assert await asyncio.wait_for(reader, 10) == [0, 1, 2]


async def test_readers_in_another_engine_tail_the_stream(make_engine: Any, db_url: str) -> None:
    worker = await make_engine(ingest)
    pushes = db_url.startswith("postgres")
    client = await make_engine(ingest, worker=False, poll_interval=30.0 if pushes else 0.05)
    handle = await worker.start(ingest, "x y")
    remote = client.handle(handle.id)
    readers = [asyncio.create_task(_collect(remote.read_stream("tokens"))) for _ in range(2)]
    local = asyncio.create_task(_collect(handle.read_stream("tokens")))
    for n in (1, 2):
        await wait_for_journal(handle, lambda j, n=n: kinds(j).count(("stream", "tokens")) == n)
        await handle.signal("more")
    async with asyncio.timeout(10):
        assert [await r for r in readers] == [["x", "y"], ["x", "y"]]
        assert await local == ["x", "y"]


@dataclasses.dataclass
class Token:
    text: str
    logprob: float


@workflow
async def typed_stream() -> None:
    async with perdure.stream("tokens") as out:
        await perdure.gather(out.write(Token("a", -0.1)), out.write(Token("b", -0.2)),
                             out.write(Token("c", -0.3)))
        assert await out.write(Token("d", 0.0)) == 3


async def test_concurrent_writes_keep_call_order_and_types(make_engine: Any) -> None:
    engine = await make_engine(typed_stream)
    handle = await engine.start(typed_stream)
    await handle.result(timeout=10)
    got = [t async for t in handle.read_stream("tokens", item_type=Token)]
    assert got == [Token("a", -0.1), Token("b", -0.2), Token("c", -0.3), Token("d", 0.0)]
    entries = [(e.kind, e.output) for e in await handle.journal()]
    assert entries == [("stream", "0"), ("stream", "1"), ("stream", "2"), ("stream", "3"),
                       ("stream_close", "4")]


@workflow
async def park_between_writes() -> int:
    out = perdure.stream("s")
    await out.write("before")
    await perdure.set_event("phase", "parked")
    await perdure.sleep(timedelta(hours=1))  # parks: the coroutine is dropped
    await out.write("after")
    await perdure.set_event("phase", "done")
    await out.close()
    return 2


async def test_replay_after_a_park_writes_nothing_twice(make_engine: Any,
                                                        clock: VirtualClock) -> None:
    engine = await make_engine(park_between_writes, clock=clock)
    handle = await engine.start(park_between_writes)
    reader = asyncio.create_task(_collect(handle.read_stream("s")))
    await wait_for_status(handle, "waiting")
    assert engine._worker.runner.contexts == {}
    clock.advance(timedelta(hours=1))
    assert await handle.result(timeout=10) == 2  # replayed the first write and the event
    assert await asyncio.wait_for(reader, 10) == ["before", "after"]
    assert await handle.get_event("phase") == "done"
    assert [(e.kind, e.output) for e in await handle.journal() if e.kind != "sleep"] == [
        ("stream", "0"), ("event", '"parked"'), ("stream", "1"), ("event", '"done"'),
        ("stream_close", "2")]


@workflow
async def fails_mid_stream() -> None:
    async with perdure.stream("s") as out:
        await out.write("partial")
        raise ValueError("the model went away")


async def test_an_error_inside_the_block_closes_the_stream(make_engine: Any) -> None:
    engine = await make_engine(fails_mid_stream)
    handle = await engine.start(fails_mid_stream)
    with pytest.raises(WorkflowFailed, match="the model went away"):
        await handle.result(timeout=10)
    assert [i async for i in handle.read_stream("s")] == ["partial"]
    assert [e.kind for e in await handle.journal()] == ["stream", "stream_close"]


# -- bad input ------------------------------------------------------------------------------

@workflow
async def misuse(kind: str) -> str:
    out = perdure.stream("s")
    await out.write(1)
    if kind == "write-after-close":
        await out.close()
        try:
            await out.write(2)
        except StreamClosed as exc:
            return f"refused: {exc}"
    elif kind == "reopen":
        async with out:
            pass
        try:
            perdure.stream("s")
        except StreamClosed as exc:
            return f"refused: {exc}"
    elif kind == "unencodable":
        try:
            await out.write(object())
        except SerializationError:
            return "refused: unencodable"
    elif kind == "nul-name":
        perdure.stream("bad\x00name")
    elif kind == "key-type":
        await perdure.set_event(7, "x")  # type: ignore[arg-type]
    elif kind == "nul-key":
        await perdure.set_event("a\x00b", "x")
    return "accepted"


@pytest.mark.parametrize("kind", ["write-after-close", "reopen", "unencodable"])
async def test_bad_writes_raise_at_the_call_and_write_nothing(make_engine: Any,
                                                              kind: str) -> None:
    engine = await make_engine(misuse)
    handle = await engine.start(misuse, kind)
    assert (await handle.result(timeout=10)).startswith("refused")
    assert [i async for i in handle.read_stream("s")] == [1]
    written = [(e.kind, e.output) for e in await handle.journal()]
    assert written[0] == ("stream", "0")
    assert all(k == "stream_close" for k, _ in written[1:])


@pytest.mark.parametrize("kind", ["nul-name", "key-type", "nul-key"])
async def test_bad_names_inside_the_workflow_are_typed_errors(make_engine: Any,
                                                              kind: str) -> None:
    engine = await make_engine(misuse)
    handle = await engine.start(misuse, kind)
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert err.value.cause_type == "perdure.errors.InvalidConfiguration"
    assert [e.kind for e in await handle.journal()] == ["stream"]
    assert await handle.events() == {}


async def test_bad_reader_arguments_and_unknown_runs(make_engine: Any) -> None:
    engine: Engine = await make_engine(late_event)
    handle = await engine.start(late_event)
    for bad in (None, 3, "", "a\x00b", "x" * 256):
        with pytest.raises(InvalidConfiguration):
            await handle.get_event(bad, timeout=0)  # type: ignore[arg-type]
        with pytest.raises(InvalidConfiguration):
            handle.read_stream(bad)  # type: ignore[arg-type]
    for offset in (-1, 1.5, "0", True, 2**31):
        with pytest.raises(InvalidConfiguration):
            handle.read_stream("s", offset=offset)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration):
        await handle.get_event("answer", timeout=float("nan"))
    with pytest.raises(InvalidConfiguration):
        engine.handle("nul\x00in-id")  # refused at the call, before any query
    for run_id in ("no-such-run",):
        missing = engine.handle(run_id)
        with pytest.raises(RunNotFound):
            await missing.get_event("answer", timeout=1)
        with pytest.raises(RunNotFound):
            await missing.events()
        with pytest.raises(RunNotFound):
            await _collect(missing.read_stream("s"))
        with pytest.raises(RunNotFound):
            await missing.request("ask", timeout=1)
    with pytest.raises(perdure.NotInWorkflow):
        perdure.stream("s")
    with pytest.raises(perdure.NotInWorkflow):
        await perdure.set_event("k", 1)
    assert await handle.events() == {}


async def _collect(items: Any) -> list[Any]:
    return [item async for item in items]
