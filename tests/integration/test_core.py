"""Core behaviour on embedded SQLite: journal, replay, retries, saga, handles."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

import perdure
from perdure import (
    NonRetryable,
    RetryPolicy,
    RunStatus,
    StepFailed,
    VirtualClock,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.testing import wait_for_journal, wait_for_status

FAST = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)


@dataclasses.dataclass(frozen=True)
class Order:
    id: str
    cents: int
    placed: datetime


@dataclasses.dataclass(frozen=True)
class Receipt:
    order_id: str
    amount: Decimal
    token: uuid.UUID


calls: dict[str, int] = {}


def bump(name: str) -> int:
    calls[name] = calls.get(name, 0) + 1
    return calls[name]


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@step
async def charge(order: Order) -> Receipt:
    bump("charge")
    return Receipt(order.id, Decimal(order.cents) / 100, uuid.uuid5(uuid.NAMESPACE_URL, order.id))


@workflow(version="1")
async def checkout(order: Order) -> Receipt:
    return await charge(order)


async def test_start_result_status_journal(make_engine: Any) -> None:
    engine = await make_engine(checkout)
    order = Order("o-1", 1999, datetime(2030, 1, 2, 3, 4, 5))
    handle = await engine.start(checkout, order, id="order-1")
    receipt = await handle.result(timeout=10)
    assert receipt == Receipt("o-1", Decimal("19.99"), uuid.uuid5(uuid.NAMESPACE_URL, "o-1"))
    assert isinstance(receipt.amount, Decimal)
    info = await handle.status()
    assert (info.id, info.workflow, info.version, info.status) == \
        ("order-1", "checkout", "1", RunStatus.COMPLETED)
    assert info.created_at <= info.updated_at
    entries = await handle.journal()
    assert [(e.seq, e.kind, e.name, e.status, e.attempts) for e in entries] == \
        [(0, "step", "charge", "completed", 1)]
    again = engine.handle("order-1")
    assert await again.result() == receipt


async def test_idempotent_start_never_runs_twice(make_engine: Any) -> None:
    engine = await make_engine(checkout)
    order = Order("o-2", 100, datetime(2030, 1, 1))
    first = await engine.start(checkout, order, id="same")
    second = await engine.start(checkout, order, id="same")
    assert first.id == second.id == "same"
    await first.result(timeout=10)
    third = await engine.start(checkout, order, id="same")
    assert await third.result() == await first.result()
    assert calls["charge"] == 1


@step(retry=FAST)
async def flaky(fail_times: int) -> str:
    n = bump("flaky")
    if n <= fail_times:
        raise ConnectionError(f"attempt {n} failed")
    return f"ok after {n}"


@workflow
async def uses_flaky(fail_times: int) -> str:
    return await flaky(fail_times)


async def test_step_retries_then_succeeds(make_engine: Any) -> None:
    engine = await make_engine(uses_flaky)
    handle = await engine.start(uses_flaky, 2)
    assert await handle.result(timeout=10) == "ok after 3"
    [entry] = await handle.journal()
    assert (entry.status, entry.attempts) == ("completed", 3)


async def test_step_exhausts_attempts_and_run_fails(make_engine: Any) -> None:
    engine = await make_engine(uses_flaky)
    handle = await engine.start(uses_flaky, 10)
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert err.value.cause_type == "perdure.errors.StepFailed"
    assert "ConnectionError" in err.value.cause_message
    assert "attempt 3 failed" in err.value.cause_message
    assert calls["flaky"] == 3
    info = await handle.status()
    assert info.status is RunStatus.FAILED
    assert info.error is not None and "Traceback" in info.error.traceback


@step(retry=FAST)
async def refuses() -> None:
    bump("refuses")
    raise NonRetryable("card declined")


@workflow
async def catches() -> str:
    try:
        await refuses()
    except StepFailed as exc:
        return f"{exc.cause_type}: {exc.cause_message} ({exc.attempts})"
    return "unreachable"


async def test_non_retryable_stops_at_once_and_is_catchable(make_engine: Any) -> None:
    engine = await make_engine(catches)
    result = await (await engine.start(catches)).result(timeout=10)
    assert result == "perdure.errors.NonRetryable: card declined (1)"
    assert calls["refuses"] == 1


@step(timeout=0.05, retry=RetryPolicy(max_attempts=2, initial_delay=0.0))
async def slow() -> None:
    bump("slow")
    await asyncio.Event().wait()


@workflow
async def times_out() -> None:
    await slow()


async def test_step_timeout_counts_as_failed_attempt(make_engine: Any) -> None:
    engine = await make_engine(times_out)
    handle = await engine.start(times_out)
    with pytest.raises(WorkflowFailed, match="TimeoutError"):
        await handle.result(timeout=10)
    assert calls["slow"] == 2


@step
def sync_step(x: int) -> tuple[int, str]:
    return x * 2, perdure.step_key()


@workflow
async def uses_sync_step(x: int) -> tuple[int, str]:
    return await sync_step(x)


async def test_sync_step_runs_in_thread_with_step_key(make_engine: Any) -> None:
    engine = await make_engine(uses_sync_step)
    handle = await engine.start(uses_sync_step, 21, id="run-7")
    value, key = await handle.result(timeout=10)
    assert value == 42 and key == "run-7:0"
    assert isinstance((await handle.result()), tuple)


@workflow
async def clocky() -> tuple[datetime, uuid.UUID, float]:
    return perdure.now(), perdure.uuid4(), perdure.random()


async def test_now_uuid_random_are_journaled(make_engine: Any) -> None:
    engine = await make_engine(clocky)
    handle = await engine.start(clocky)
    value = await handle.result(timeout=10)
    kinds = [(e.kind, e.status) for e in await handle.journal()]
    assert kinds == [("now", "completed"), ("uuid4", "completed"), ("random", "completed")]
    assert value[0].tzinfo is not None


# -- saga -----------------------------------------------------------------------------------

undo_log: list[str] = []


async def release_stock(item: str) -> None:
    undo_log.append(f"release {item}")


async def refund(order_id: str, cents: int, result: str) -> None:
    undo_log.append(f"refund {order_id} {cents} {result}")


@step(compensate=release_stock)
async def reserve(item: str) -> str:
    return f"reserved {item}"


@step(compensate=refund)
async def pay(order_id: str, cents: int) -> str:
    return f"paid-{cents}"


@step(retry=RetryPolicy(max_attempts=2, initial_delay=0.0))
async def ship(order_id: str) -> None:
    raise RuntimeError("no courier")


@workflow
async def saga(order_id: str) -> None:
    await reserve("book")
    await pay(order_id, 500)
    await ship(order_id)


async def test_saga_compensates_in_reverse_order(make_engine: Any) -> None:
    undo_log.clear()
    engine = await make_engine(saga)
    handle = await engine.start(saga, "o-9")
    with pytest.raises(WorkflowFailed, match="no courier"):
        await handle.result(timeout=10)
    assert undo_log == ["refund o-9 500 paid-500", "release book"]
    entries = [(e.kind, e.name, e.status) for e in await handle.journal()]
    assert entries == [
        ("step", "reserve", "completed"),
        ("step", "pay", "completed"),
        ("step", "ship", "failed"),
        ("compensation", "pay", "completed"),
        ("compensation", "reserve", "completed"),
    ]


async def broken_undo(item: str) -> None:
    undo_log.append("broken undo tried")
    raise ValueError("undo failed")


@step(compensate=broken_undo, retry=RetryPolicy(max_attempts=2, initial_delay=0.0))
async def reserve2(item: str) -> str:
    return item


@workflow
async def saga2() -> None:
    await reserve("first")
    await reserve2("second")
    raise KeyError("boom")


async def test_failed_compensation_is_recorded_and_the_rest_still_run(make_engine: Any) -> None:
    undo_log.clear()
    engine = await make_engine(saga2)
    handle = await engine.start(saga2)
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert err.value.cause_type == "KeyError"
    assert undo_log == ["broken undo tried", "broken undo tried", "release first"]
    entries = [(e.kind, e.name, e.status, e.attempts) for e in await handle.journal()]
    assert entries[2:] == [("compensation", "reserve2", "failed", 2),
                           ("compensation", "reserve", "completed", 1)]


# -- retry count survives a restart (virtual clock: no real waiting) ------------------------

@step(retry=RetryPolicy(max_attempts=4, initial_delay=60.0, jitter=0.0))
async def slow_retry() -> int:
    n = bump("slow_retry")
    if n < 3:
        raise ConnectionError("down")
    return n


@workflow
async def parks_on_backoff() -> int:
    return await slow_retry()


async def test_long_backoff_parks_the_run_and_keeps_the_attempt_count(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(parks_on_backoff, clock=clock)
    handle = await engine.start(parks_on_backoff)
    await wait_for_status(handle, "waiting")
    [entry] = await handle.journal()
    assert (entry.status, entry.attempts) == ("retrying", 1)
    await engine.close()
    # A new worker (a restart) after the back-off: it continues at attempt 2, then 3.
    engine2 = await make_engine(parks_on_backoff, clock=clock)
    h2 = engine2.handle(handle.id)
    clock.advance(61)
    await wait_for_journal(h2, lambda j: j[0].attempts == 2)
    await wait_for_status(h2, "waiting")
    clock.advance(121)
    assert await h2.result(timeout=10) == 3
    [entry] = await h2.journal()
    assert (entry.status, entry.attempts) == ("completed", 3)
