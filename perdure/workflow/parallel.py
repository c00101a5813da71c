"""``gather``: durable operations run concurrently, replayed one to one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar, overload

from perdure.workflow.context import current
from perdure.workflow.stops import Stop, Suspend

__all__ = ["gather"]

T = TypeVar("T")
R = TypeVar("R")


@overload
async def gather(a: Awaitable[T], /) -> tuple[T]: ...
@overload
async def gather(a: Awaitable[T], b: Awaitable[R], /) -> tuple[T, R]: ...
@overload
async def gather(*aws: Awaitable[Any]) -> tuple[Any, ...]: ...


async def gather(*aws: Awaitable[Any]) -> tuple[Any, ...]:
    """Run durable operations concurrently and return their results in argument order.

    The operations were numbered when called, so replay matches them one to one: the
    journaled ones return at once and only the missing ones execute. Like
    ``asyncio.gather``, the first error propagates — but only after every operation finished
    and was journaled, and "first" means first in argument order, so a replay raises the same
    one. If some operations must wait long, the run parks once for all of them.
    """
    ctx = current("perdure.gather()")
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    stops = [o for o in outcomes if isinstance(o, Stop)]
    hard = [s for s in stops if not isinstance(s, Suspend)]
    if hard:
        ctx.halt(hard[0])
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Stop):
            raise outcome
    if stops:
        # Every branch that could finish has been journaled; park once for the rest. The
        # context remembered the first branch's stop: replace it with the combined one.
        ctx.stop = None
        ctx.halt(Suspend.combine([s for s in stops if isinstance(s, Suspend)]))
    return tuple(outcomes)
