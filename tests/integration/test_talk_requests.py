"""Requests into a run and callbacks out of it, on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    CallbackAlreadyCompleted,
    CallbackFailed,
    CallbackNotFound,
    CallbackTimeout,
    InvalidConfiguration,
    PerdureError,
    RequestRejected,
    RequestTimeout,
    RunFinished,
    RunNotFound,
    SerializationError,
    VirtualClock,
    workflow,
)
from perdure.testing import wait_for_journal, wait_for_status


def has(kind: str, status: str | None = None) -> Any:
    return lambda journal: any(e.kind == kind and status in (None, e.status) for e in journal)


# -- requests -------------------------------------------------------------------------------

@dataclasses.dataclass
class Ask:
    by: str
    amount: int


@dataclasses.dataclass
class Decision:
    ok: bool
    note: str


@workflow
async def approver(n: int) -> list[str]:
    seen = []
    for _ in range(n):
        req = await perdure.wait_for_request("approve", timeout=timedelta(days=2),
                                             payload_type=Ask)
        seen.append(req.payload.by)
        if req.payload.amount > 100:
            await req.reject("too much")
        else:
            await req.reply(Decision(True, f"ok for {req.payload.by}"))
    return seen


@pytest.mark.parametrize("park_after", [5.0, 0.05], ids=["in-memory", "parked"])
async def test_request_gets_the_workflows_reply(make_engine: Any, park_after: float) -> None:
    engine = await make_engine(approver, park_after=park_after)
    handle = await engine.start(approver, 3)
    await wait_for_journal(handle, has("request", "waiting"))
    if park_after < 1:
        await wait_for_status(handle, "waiting")
    decision = await handle.request("approve", Ask("ana", 10), timeout=30,
                                    reply_type=Decision)
    assert decision == Decision(True, "ok for ana")
    with pytest.raises(RequestRejected, match="too much") as err:
        await handle.request("approve", Ask("bo", 500), timeout=30)
    assert err.value.reason == "too much"
    # Without reply_type, a dataclass reply comes back as itself all the same (it names its
    # class in the encoding).
    assert await handle.request("approve", Ask("cy", 1)) == Decision(True, "ok for cy")
    assert await handle.result(timeout=10) == ["ana", "bo", "cy"]
    kinds = [(e.kind, e.name) for e in await handle.journal()]
    assert kinds == [("request", "approve"), ("reply", "approve")] * 3


@workflow
async def echo_many(n: int) -> int:
    for _ in range(n):
        req = await perdure.wait_for_request("echo")
        await req.reply(req.payload * 2)
    return n


async def test_concurrent_requests_are_answered_once_each(make_engine: Any) -> None:
    engine = await make_engine(echo_many)
    handle = await engine.start(echo_many, 8)
    replies = await asyncio.gather(*(handle.request("echo", i, timeout=30) for i in range(8)))
    assert replies == [i * 2 for i in range(8)]
    assert await handle.result(timeout=10) == 8


@workflow
async def takes_then_waits() -> str:
    req = await perdure.wait_for_request("ask")
    await req.reply("first answer")
    try:
        await req.reply("second answer")
    except PerdureError as exc:
        await perdure.set_event("second", str(exc))
    await perdure.wait_for_signal("end")
    return "done"


async def test_a_request_id_makes_a_retried_request_wait_for_the_same_reply(
        make_engine: Any) -> None:
    engine = await make_engine(takes_then_waits)
    handle = await engine.start(takes_then_waits)
    assert await handle.request("ask", timeout=30, id="mail-7") == "first answer"
    # The caller retries (it crashed before it saw the reply, say): same reply, nothing new
    # for the run to take.
    assert await handle.request("ask", timeout=30, id="mail-7") == "first answer"
    assert "already answered" in await handle.get_event("second", timeout=10)
    await handle.signal("end")
    assert await handle.result(timeout=10) == "done"
    assert [e.kind for e in await handle.journal()].count("request") == 1
    assert [e.kind for e in await handle.journal()].count("reply") == 1


@workflow
async def maybe_take() -> str:
    await perdure.wait_for_signal("go")
    try:
        req = await perdure.wait_for_request("ask", timeout=60)
    except RequestTimeout:
        return "no request"
    return f"took {req.payload}"


async def test_a_timed_out_request_is_withdrawn(make_engine: Any, clock: VirtualClock) -> None:
    # park_after=0.01: the wait parks at once (status waiting) instead of lingering 5 real
    # seconds in memory first; nothing this test checks depends on the lingering
    engine = await make_engine(maybe_take, clock=clock, park_after=0.01)
    handle = await engine.start(maybe_take)
    with pytest.raises(RequestTimeout, match="withdrawn") as err:
        await handle.request("ask", "late", timeout=0.1)
    assert isinstance(err.value, TimeoutError)
    await handle.signal("go")
    await wait_for_journal(handle, has("request", "waiting"))
    clock.advance(60)
    assert await handle.result(timeout=10) == "no request"  # the withdrawn one never came


@workflow
async def takes_and_leaves() -> str:
    await perdure.wait_for_request("ask")
    return "left without a word"


async def test_requests_to_finished_and_unknown_runs(make_engine: Any) -> None:
    engine = await make_engine(takes_and_leaves)
    handle = await engine.start(takes_and_leaves)
    with pytest.raises(RunFinished, match="did not reply to request 'ask'"):
        await handle.request("ask", 1, timeout=30)
    with pytest.raises(RunFinished, match="completed"):
        await handle.request("ask", 2, timeout=30)
    with pytest.raises(RunNotFound):
        await engine.handle("nope").request("ask", timeout=1)
    for bad in (None, "", "a\x00b", 5):
        with pytest.raises(InvalidConfiguration):
            await handle.request(bad, timeout=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration):
        await handle.request("ask", timeout=-1)
    with pytest.raises(InvalidConfiguration):
        await handle.request("ask", id="x\x00y")
    with pytest.raises(SerializationError):
        await handle.request("ask", object())


# -- callbacks ------------------------------------------------------------------------------

@workflow
async def awaits_callback(timeout: float | None) -> Any:
    cb = await perdure.callback()
    await perdure.set_event("token", cb.token)
    try:
        return await cb.wait(timeout=timeout, value_type=Decision)
    except CallbackFailed as exc:
        return f"failed: {exc.cause_type}: {exc.cause_message}"
    except CallbackTimeout:
        return "timed out"


@pytest.mark.parametrize("park_after", [5.0, 0.05], ids=["in-memory", "parked"])
async def test_complete_callback_resumes_the_run(make_engine: Any, park_after: float) -> None:
    engine = await make_engine(awaits_callback, park_after=park_after)
    handle = await engine.start(awaits_callback, None)
    token = await handle.get_event("token", timeout=10)
    assert isinstance(token, str) and len(token) >= 40  # secrets.token_urlsafe(32)
    await wait_for_journal(handle, lambda j: len(j) == 2)
    if park_after < 1:
        await wait_for_status(handle, "waiting")
    await engine.complete_callback(token, Decision(True, "clicked"))
    assert await handle.result(timeout=10) == Decision(True, "clicked")
    with pytest.raises(CallbackAlreadyCompleted):
        await engine.complete_callback(token, Decision(False, "again"))
    with pytest.raises(CallbackAlreadyCompleted):
        await engine.fail_callback(token, "too late")
    assert [e.status for e in await handle.journal()] == ["completed"] * 3


async def test_a_callback_completed_before_the_wait_and_failed_ones(make_engine: Any) -> None:
    engine = await make_engine(awaits_callback)
    tokens = []
    for i in range(3):
        handle = await engine.start(awaits_callback, None, id=f"cb-{i}")
        tokens.append(await handle.get_event("token", timeout=10))
    assert len(set(tokens)) == 3
    await engine.fail_callback(tokens[0], ValueError("card declined"))
    await engine.fail_callback(tokens[1], "nobody answered")
    await engine.complete_callback(tokens[2], Decision(False, "no"))
    assert await engine.handle("cb-0").result(timeout=10) == \
        "failed: ValueError: card declined"
    assert await engine.handle("cb-1").result(timeout=10) == \
        "failed: perdure.errors.CallbackFailed: nobody answered"
    assert await engine.handle("cb-2").result(timeout=10) == Decision(False, "no")


async def test_callback_timeout(make_engine: Any, clock: VirtualClock) -> None:
    # park_after=0.01: the wait parks at once (status waiting) instead of lingering 5 real
    # seconds in memory first; nothing this test checks depends on the lingering
    engine = await make_engine(awaits_callback, clock=clock, park_after=0.01)
    handle = await engine.start(awaits_callback, 3600.0)
    token = await handle.get_event("token", timeout=10)
    await wait_for_journal(handle, has("callback_wait", "waiting"))
    clock.advance(3600)
    assert await handle.result(timeout=10) == "timed out"
    with pytest.raises(RunFinished):
        await engine.complete_callback(token, 1)


@workflow
async def token_survives_a_park() -> str:
    cb = await perdure.callback()
    await perdure.sleep(timedelta(hours=1))  # parks; the replay must return the same token
    await perdure.set_event("token", cb.token)
    return str(await cb.wait())


async def test_replay_returns_the_same_token(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(token_survives_a_park, clock=clock)
    handle = await engine.start(token_survives_a_park)
    await wait_for_status(handle, "waiting")
    [made, _] = await handle.journal()
    clock.advance(timedelta(hours=1))
    token = await handle.get_event("token", timeout=10)
    assert made.output == f'"{token}"'
    await engine.complete_callback(token, "yes")
    assert await handle.result(timeout=10) == "yes"


async def test_bad_callback_completions(make_engine: Any) -> None:
    engine = await make_engine(awaits_callback)
    handle = await engine.start(awaits_callback, None)
    token = await handle.get_event("token", timeout=10)
    with pytest.raises(CallbackNotFound) as err:
        await engine.complete_callback(token[:-2] + "xx", 1)
    assert token[:-2] not in str(err.value)  # a token is a secret: never echoed
    for bad in (None, "", "a\x00b", 12):
        with pytest.raises(InvalidConfiguration):
            await engine.complete_callback(bad, 1)  # type: ignore[arg-type]
    with pytest.raises(SerializationError):
        await engine.complete_callback(token, object())
    with pytest.raises(InvalidConfiguration):
        await engine.fail_callback(token, 42)  # type: ignore[arg-type]
    # None of that completed it.
    await engine.complete_callback(token, Decision(True, "finally"))
    assert await handle.result(timeout=10) == Decision(True, "finally")
