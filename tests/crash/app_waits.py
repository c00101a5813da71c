"""Workflows of the durable-wait crash tests, run in real worker processes.

Started as ``python -m perdure worker tests.crash.app_waits:PARK --db ...`` (or ``:HOLD``).
Every step's side effect goes through :func:`tests.crash.app._effect`, so it is recorded in the
cluster's ledger and honours the same hang points (``PERDURE_CRASH_HANG=NAME@before|after``):
the test learns through the FIFO that a step hangs, then SIGKILLs its worker.

Two worker targets differ only in how long a wait is held in memory:

* ``PARK`` (``park_after=0.2``): a wait longer than 0.2 s parks the run (status ``waiting``,
  no coroutine), so the test can kill the worker while the run is only a database row.
* ``HOLD`` (``park_after=5``): waits of a few seconds are served (timers) or lingered on
  (signals, children) in memory, so the test can kill the worker while it holds the run.
* ``SLOW_POLL``: ``HOLD`` with a 1 s cross-process check interval, to widen a race window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import perdure
from perdure import Cancelled, Engine, Step, step, workflow
from tests.crash.app import FAST, _effect

__all__ = ["HOLD", "PARK", "SLOW_POLL", "WAIT_WORKFLOWS", "approval", "booking", "booking_child",
           "booking_parent", "fan", "fan_mixed", "nap", "nap_until", "parent", "kid",
           "timed_booking"]


def _effect_step(name: str, compensate: Any = None) -> Step[[str], str]:
    async def body(tag: str) -> str:
        key = await _effect("step", name)
        return f"{name}({tag}) key={key}"

    body.__qualname__ = body.__name__ = name
    return step(name=name, retry=FAST, compensate=compensate)(body)


def _undo(name: str) -> Any:
    async def undo(tag: str, result: str) -> None:
        await _effect("compensation", name)

    undo.__qualname__ = undo.__name__ = name
    return undo


# -- timers ---------------------------------------------------------------------------------

w_before = _effect_step("w_before")
w_after = _effect_step("w_after")


@workflow(name="nap")
async def nap(tag: str, seconds: float) -> list[str]:
    """A step, a durable sleep, a step."""
    first = await w_before(tag)
    await perdure.sleep(seconds)
    return [first, await w_after(tag)]


@workflow(name="nap_until")
async def nap_until(tag: str, when: datetime) -> list[str]:
    """A step, a durable sleep until an aware datetime, a step."""
    first = await w_before(tag)
    await perdure.sleep_until(when)
    return [first, await w_after(tag)]


# -- signals --------------------------------------------------------------------------------

sig_before = _effect_step("sig_before")


@step(name="use_signal", retry=FAST)
async def use_signal(payload: Any) -> str:
    key = await _effect("step", "use_signal")
    return f"used {payload!r} key={key}"


@workflow(name="approval")
async def approval(tag: str) -> list[Any]:
    """A step, a wait for signal ``go`` (its timeout journals the wait at once: the test sees
    by state that the run waits), a step that consumes the payload."""
    first = await sig_before(tag)
    payload = await perdure.wait_for_signal("go", timeout=60)
    return [first, payload, await use_signal(payload)]


# -- children -------------------------------------------------------------------------------

p_before = _effect_step("p_before")
p_after = _effect_step("p_after")
c1 = _effect_step("c1")
c2 = _effect_step("c2")


@workflow(name="kid")
async def kid(tag: str) -> list[str]:
    return [await c1(tag), await c2(tag)]


@workflow(name="parent")
async def parent(tag: str) -> list[Any]:
    """A step, a child run (two steps), a step with the child's result."""
    first = await p_before(tag)
    child = await perdure.start_child(kid, tag)
    got = await child.result()
    return [first, child.id, got, await p_after(",".join(got))]


# -- gather ---------------------------------------------------------------------------------

g1, g2, g3, g4 = (_effect_step(f"g{i}") for i in range(1, 5))
g_done = _effect_step("g_done")


@workflow(name="fan")
async def fan(tag: str) -> list[str]:
    """Four steps at once, then one with their results."""
    got = await perdure.gather(g1(tag), g2(tag), g3(tag), g4(tag))
    return [*got, await g_done(str(len(got)))]


@workflow(name="fan_mixed")
async def fan_mixed(tag: str) -> list[Any]:
    """A step, a signal, a short timer and another step at once, then one more step."""
    got = await perdure.gather(g1(tag), perdure.wait_for_signal("x", timeout=60),
                               perdure.sleep(0.3), g3(tag))
    return [*got, await g_done(str(len(got)))]


# -- cancellation ---------------------------------------------------------------------------

book_x = _effect_step("book_x", compensate=_undo("undo_x"))
book_y = _effect_step("book_y", compensate=_undo("undo_y"))
cleanup = _effect_step("cleanup")


@workflow(name="booking")
async def booking(tag: str) -> str:
    """Two compensable bookings, then a wait nobody answers; on Cancelled a cleanup step runs
    before the cancellation goes on (and the bookings are undone, newest first)."""
    await book_x(tag)
    await book_y(tag)
    try:
        await perdure.wait_for_signal("never", timeout=60)
    except Cancelled:
        await cleanup(tag)
        raise
    return "answered"


@workflow(name="timed_booking")
async def timed_booking(tag: str) -> str:
    """A booking, then a long sleep that the run's deadline cuts short."""
    await book_x(tag)
    try:
        await perdure.sleep(60)
    except Cancelled:
        await cleanup(tag)
        raise
    return "slept"


@workflow(name="booking_child")
async def booking_child(tag: str) -> str:
    await book_y(tag)
    await perdure.wait_for_signal("never", timeout=60)
    return "answered"


@workflow(name="booking_parent")
async def booking_parent(tag: str) -> str:
    """A booking, then a child that books and waits forever: cancelling the parent cancels
    the child too, and each undoes its own booking."""
    await book_x(tag)
    child = await perdure.start_child(booking_child, tag)
    return await child.result()


WAIT_WORKFLOWS = [nap, nap_until, approval, kid, parent, fan, fan_mixed, booking,
                  timed_booking, booking_child, booking_parent]

#: waits longer than 0.2 s park the run; the command's ``--db`` replaces the URL
PARK = Engine("sqlite:///unused.db", workflows=WAIT_WORKFLOWS, park_after=0.2)
#: waits up to 5 s are held in memory
HOLD = Engine("sqlite:///unused.db", workflows=WAIT_WORKFLOWS, park_after=5.0)
#: as HOLD, but the check for commits of other processes (a signal sent by a client to a run
#: held in memory) runs every second instead of every 50 ms
SLOW_POLL = Engine("sqlite:///unused.db", workflows=WAIT_WORKFLOWS, park_after=5.0,
                   poll_interval=1.0)
