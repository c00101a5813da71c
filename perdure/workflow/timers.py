"""Durable timers: ``sleep`` and ``sleep_until``.

The due time is journaled when the timer is first reached, so a replay never moves it; a long
sleep parks the run (a row with a due time, no coroutine) until a worker wakes it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from perdure import validate
from perdure.errors import InvalidConfiguration
from perdure.records import JournalEntry
from perdure.workflow.context import RunContext, current

__all__ = ["seconds", "sleep", "sleep_until"]


def seconds(duration: timedelta | float, what: str) -> float:
    """``duration`` (a ``timedelta`` or a number of seconds) as seconds: finite, not negative
    and at most about a century (so the due time computed from it is a real date)."""
    return validate.seconds(duration, what, zero=True, timedeltas=True)


def sleep(duration: timedelta | float) -> Coroutine[Any, Any, None]:
    """Sleep durably for ``duration`` (a ``timedelta`` or seconds).

    The due time is journaled on first encounter, so a replay never moves it; a long sleep
    parks the run (no coroutine, no thread) until a worker wakes it when it falls due.
    """
    delay = seconds(duration, "sleep duration")
    ctx = current("perdure.sleep()")
    seq = ctx.take_seq()
    return _timer(ctx, seq, ctx.clock.time() + delay)


def sleep_until(deadline: datetime) -> Coroutine[Any, Any, None]:
    """Sleep durably until ``deadline`` (an aware ``datetime``)."""
    if not isinstance(deadline, datetime):
        raise InvalidConfiguration(f"sleep_until needs a datetime, not "
                                   f"{type(deadline).__name__}")
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise InvalidConfiguration("sleep_until needs an aware datetime (with a tzinfo); a "
                                   "naive one is ambiguous across machines")
    ctx = current("perdure.sleep_until()")
    seq = ctx.take_seq()
    return _timer(ctx, seq, deadline.timestamp())


async def _timer(ctx: RunContext, seq: int, due: float) -> None:
    entry = ctx.recorded(seq, "sleep", "sleep")
    if entry is not None:
        ctx.replay_cancel(entry)
        if entry.status == "completed":
            if seq == ctx.journal_end and entry.due_at is not None \
                    and entry.finished_at is not None:
                # The claim that began this execution fired it (batch firing): report it here.
                start = entry.due_at if entry.started_at is None else max(entry.due_at,
                                                                           entry.started_at)
                ctx.hooks.timer_fired(seq, start, entry.finished_at)
            return
        due = entry.due_at if entry.due_at is not None else due
        started = entry.started_at
    else:
        await ctx.deliver_cancel(seq, "sleep", "sleep")
        started = ctx.clock.time()
        # The due time goes to the journal first: a replay (after a crash or a park) reads it.
        await ctx.write(JournalEntry(seq, "sleep", "sleep", "waiting", 0, due_at=due,
                                     started_at=started))
    await ctx.wait_until(due, f"sleep until {datetime.fromtimestamp(due).isoformat()}")
    await ctx.deliver_cancel(seq, "sleep", "sleep")
    # Late from when it was due, or from when the run reached it if that was later (a
    # sleep_until a past time fires at once and is not late).
    ctx.hooks.timer_fired(seq, due if started is None else max(due, started), ctx.clock.time())
    # Queued, not awaited: a fired timer needs no fsync of its own (replay would see the due
    # time passed anyway); it commits with the run's next write and reads well in the journal.
    ctx.write_nowait(JournalEntry(seq, "sleep", "sleep", "completed", 1, due_at=due,
                                  started_at=started, finished_at=ctx.clock.time()))
