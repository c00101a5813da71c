"""Workflows of the talk crash tests (events, streams, requests, callbacks), run in real worker
processes as ``python -m perdure worker tests.crash.app_talk:PARK --db ...`` (or ``:HOLD``).

Every step's side effect goes through :func:`tests.crash.app._effect`: it is recorded in the
cluster's ledger and honours the hang points (``PERDURE_CRASH_HANG=NAME@before|after`` and
``PERDURE_CRASH_HANG_AFTER=N``), so the test learns through the FIFO exactly when to SIGKILL.
``PARK`` (``park_after=0.2``) parks a waiting run as a row; ``HOLD`` (``park_after=5``) keeps
it in memory.
"""

from __future__ import annotations

from typing import Any

import perdure
from perdure import Engine, step, workflow
from tests.crash.app import FAST, _effect

__all__ = ["HOLD", "PARK", "TALK_WORKFLOWS", "approve_after_check", "awaits_click",
           "replies_then_works", "streamer"]


@step(name="make_token", retry=FAST)
async def make_token(tag: str, i: int) -> str:
    key = await _effect("step", "make_token")
    return f"{tag}-{i} key={key}"


@workflow(name="streamer")
async def streamer(tag: str, n: int) -> int:
    """``n`` tokens, each made by a step, each written to stream ``tokens``; the progress
    event follows every write."""
    await perdure.set_event("progress", 0)
    async with perdure.stream("tokens") as out:
        for i in range(n):
            await out.write(await make_token(tag, i))
            await perdure.set_event("progress", i + 1)
    return n


@step(name="after_reply", retry=FAST)
async def after_reply(tag: str) -> str:
    key = await _effect("step", "after_reply")
    return f"after {tag} key={key}"


@workflow(name="replies_then_works")
async def replies_then_works(tag: str) -> list[Any]:
    """Takes request ``ask``, replies at once, then runs a step (the kill point: the reply is
    journaled, the worker dies before the run goes on)."""
    req = await perdure.wait_for_request("ask", timeout=60)
    await req.reply({"answer": req.payload, "tag": tag})
    return [req.payload, await after_reply(tag)]


@step(name="check", retry=FAST)
async def check(payload: Any) -> str:
    key = await _effect("step", "check")
    return f"checked {payload!r} key={key}"


@workflow(name="approve_after_check")
async def approve_after_check(tag: str) -> str:
    """Takes request ``ask``, runs a step on it (the kill point: the request is consumed and
    journaled, the reply not yet made), then replies with the step's result."""
    req = await perdure.wait_for_request("ask", timeout=60)
    checked = await check(req.payload)
    await req.reply(checked)
    return checked


@step(name="mail", retry=FAST)
async def mail(token: str) -> str:
    key = await _effect("step", "mail")
    return f"mailed {token} key={key}"


@workflow(name="awaits_click")
async def awaits_click(tag: str) -> list[Any]:
    """Makes a callback token, publishes it, mails it (a step: a kill point), then waits for
    the click."""
    cb = await perdure.callback()
    await perdure.set_event("token", cb.token)
    mailed = await mail(cb.token)
    return [mailed, await cb.wait(timeout=60)]


TALK_WORKFLOWS = [streamer, replies_then_works, approve_after_check, awaits_click]

#: waits longer than 0.2 s park the run; the command's ``--db`` replaces the URL
PARK = Engine("sqlite:///unused.db", workflows=TALK_WORKFLOWS, park_after=0.2)
#: waits up to 5 s are held in memory
HOLD = Engine("sqlite:///unused.db", workflows=TALK_WORKFLOWS, park_after=5.0)
