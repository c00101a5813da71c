"""Deployment errors block a run; they never fail it or compensate it.

A workflow, child or payload type this worker does not have is a deployment mistake: the run
stops in ``blocked`` with the reason, nothing is undone, and ``resume`` after deploying the
right code continues it where it stopped.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import RunBlocked, RunInfo, RunStatus, VirtualClock, step, workflow
from perdure.testing import wait_for_status

ledger: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    ledger.clear()


async def settled(handle: Any) -> RunInfo:
    """Wait until the run stops (blocked, or a wrong outcome) and require it blocked."""
    info = await wait_for_status(handle, "blocked", "failed", "completed", "cancelled")
    assert info.status is RunStatus.BLOCKED, (info.status, info.error)
    return info


async def refund(order: str) -> None:
    ledger.append(f"refund {order}")


@step(compensate=refund)
async def charge(order: str) -> str:
    ledger.append(f"charge {order}")
    return f"paid {order}"


@workflow
async def ship(order: str) -> str:
    return f"shipped {order}"


@workflow
async def fulfil(order: str) -> str:
    paid = await charge(order)
    child = await perdure.start_child(ship, order)
    return f"{paid}, {await child.result()}"


async def test_an_unregistered_child_workflow_blocks_and_resume_continues(
        make_engine: Any) -> None:
    engine = await make_engine(fulfil)  # a worker deployed without `ship`
    handle = await engine.start(fulfil, "o-1")
    info = await settled(handle)
    assert info.blocked_reason is not None
    assert "'ship'" in info.blocked_reason and "not registered" in info.blocked_reason
    with pytest.raises(RunBlocked, match="ship"):
        await handle.result(timeout=5)
    assert ledger == ["charge o-1"]  # nothing was compensated
    assert [(e.kind, e.name, e.status) for e in await handle.journal()] == [
        ("step", "charge", "completed")]
    await engine.close()

    fixed = await make_engine(fulfil, ship)  # the right code is deployed
    await fixed.resume(handle.id)
    assert await fixed.handle(handle.id).result(timeout=10) == "paid o-1, shipped o-1"
    assert ledger == ["charge o-1"]  # charged once, never refunded


@workflow
async def catches_everything(order: str) -> str:
    await charge(order)
    try:
        await perdure.start_child(ship, order)
    except Exception as exc:  # a deployment error is not the workflow's to handle
        return f"swallowed {type(exc).__name__}"
    return "started"


async def test_the_workflow_cannot_swallow_a_missing_child(make_engine: Any) -> None:
    engine = await make_engine(catches_everything)
    handle = await engine.start(catches_everything, "o-2")
    await settled(handle)
    assert ledger == ["charge o-2"]


# -- a journaled payload that this deployment cannot decode --------------------------------

@dataclasses.dataclass
class Quote:
    cents: int
    currency: str


@step(name="price", compensate=refund)
async def price_v1(order: str) -> int:
    ledger.append(f"price {order}")
    return 1999


@step(name="price")
async def price_v2(order: str) -> Quote:  # a deploy changed the result type
    ledger.append(f"price2 {order}")
    return Quote(1999, "EUR")


PRICE = [price_v1]


@workflow
async def quote(order: str) -> str:
    value = await PRICE[0](order)
    await perdure.sleep(timedelta(hours=1))
    return f"quoted {value!r}"


async def test_a_journaled_step_result_the_code_cannot_decode_blocks(
        make_engine: Any, clock: VirtualClock) -> None:
    PRICE[0] = price_v1
    engine = await make_engine(quote, clock=clock)
    handle = await engine.start(quote, "o-3")
    await wait_for_status(handle, "waiting")
    PRICE[0] = price_v2  # replay will decode the journaled 1999 as a Quote
    try:
        clock.advance(timedelta(hours=1))
        info = await settled(handle)
    finally:
        PRICE[0] = price_v1
    assert info.blocked_reason is not None
    assert "cannot decode" in info.blocked_reason and "'price'" in info.blocked_reason
    assert ledger == ["price o-3"]  # neither re-executed nor compensated
    await engine.resume(handle.id)
    assert await handle.result(timeout=10) == "quoted 1999"
    assert ledger == ["price o-3"]


@workflow(name="greet")
async def greet_str(name: str) -> str:
    return f"hello {name}"


@workflow(name="greet")
async def greet_int(count: int) -> str:  # the worker runs other code under the same name
    return f"hello x{count}"


async def test_run_arguments_the_worker_cannot_decode_block(make_engine: Any,
                                                            db_url: str) -> None:
    client = await make_engine(greet_str, worker=False)
    handle = await client.start(greet_str, "ana")
    worker = await make_engine(greet_int)
    info = await settled(worker.handle(handle.id))
    assert info.blocked_reason is not None and "cannot decode" in info.blocked_reason
    assert "arguments" in info.blocked_reason
    await worker.close()
    fixed = await make_engine(greet_str)
    await fixed.resume(handle.id)
    assert await fixed.handle(handle.id).result(timeout=10) == "hello ana"


@workflow(name="child")
async def child_v1() -> int:
    return 7


@workflow(name="child")
async def child_v2() -> Quote:
    return Quote(7, "EUR")


CHILD = [child_v1]


@workflow
async def parent() -> str:
    handle = await perdure.start_child(CHILD[0])
    value = await handle.result()
    await perdure.sleep(timedelta(hours=1))
    return f"child said {value!r}"


async def test_a_child_result_the_parent_cannot_decode_blocks(
        make_engine: Any, clock: VirtualClock) -> None:
    CHILD[0] = child_v1
    engine = await make_engine(parent, child_v1, clock=clock)
    handle = await engine.start(parent)
    await wait_for_status(handle, "waiting")
    journal = await handle.journal()
    assert ("join", "completed") in [(e.kind, e.status) for e in journal]
    await engine.close()
    CHILD[0] = child_v2
    try:
        other = await make_engine(parent, child_v2, clock=clock)
        clock.advance(timedelta(hours=1))
        info = await settled(other.handle(handle.id))
    finally:
        CHILD[0] = child_v1
    assert info.blocked_reason is not None and "cannot decode" in info.blocked_reason
    assert info.status is RunStatus.BLOCKED
