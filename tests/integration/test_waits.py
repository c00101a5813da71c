"""Durable waits: timers, signals, cancellation, children, gather, deadlines (virtual clock)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    Cancelled,
    ChildFailed,
    InvalidConfiguration,
    NotInWorkflow,
    RetryPolicy,
    RunBlocked,
    RunCancelled,
    RunFinished,
    RunNotFound,
    RunStatus,
    SerializationError,
    VirtualClock,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.testing import wait_for_journal, wait_for_status

log: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    log.clear()


@step
async def note(text: str) -> str:
    log.append(text)
    return text


# -- timers ---------------------------------------------------------------------------------

@workflow
async def sleeper(days: int) -> str:
    await note("before")
    await perdure.sleep(timedelta(days=days))
    await note("after")
    return perdure.now().isoformat()


async def test_long_sleep_parks_and_fires_when_the_clock_advances(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(sleeper, clock=clock)
    handle = await engine.start(sleeper, 3)
    info = await wait_for_status(handle, "waiting")
    assert info.status is RunStatus.WAITING
    assert log == ["before"]
    assert engine._worker.runner.contexts == {}  # parked: no coroutine held
    clock.advance(timedelta(days=2, hours=23))
    await asyncio.sleep(0.05)  # give a wrongly-early wake-up the chance to show
    assert (await handle.status()).status is RunStatus.WAITING
    clock.advance(timedelta(hours=1))
    finished = await handle.result(timeout=5)
    assert log == ["before", "after"]
    assert datetime.fromisoformat(finished) == clock.now()
    kinds = [(e.kind, e.status) for e in await handle.journal()]
    assert kinds == [("step", "completed"), ("sleep", "completed"), ("step", "completed"),
                     ("now", "completed")]


async def test_timer_due_time_survives_a_restart(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(sleeper, clock=clock)
    handle = await engine.start(sleeper, 1)
    await wait_for_status(handle, "waiting")
    [_, entry] = await handle.journal()
    due = entry.due_at
    await engine.close()
    clock.advance(timedelta(hours=5))
    engine2 = await make_engine(sleeper, clock=clock)
    assert (await engine2.handle(handle.id).status()).status is RunStatus.WAITING
    [_, entry] = await engine2.handle(handle.id).journal()
    assert entry.due_at == due  # replay never moves it
    clock.advance(timedelta(hours=19))
    await engine2.handle(handle.id).result(timeout=5)


@workflow
async def short_nap() -> str:
    await perdure.sleep(0.5)
    return "rested"


async def test_short_sleep_is_served_in_memory(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(short_nap, clock=clock)
    handle = await engine.start(short_nap)
    await wait_for_journal(handle, lambda j: len(j) == 1)
    assert (await handle.status()).status is RunStatus.RUNNING  # held, not parked
    clock.advance(0.5)
    assert await handle.result(timeout=5) == "rested"


@workflow
async def bad_sleep(kind: str) -> None:
    if kind == "negative":
        await perdure.sleep(-1)
    elif kind == "naive":
        await perdure.sleep_until(datetime(2030, 1, 1))
    else:
        await perdure.sleep("soon")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["negative", "naive", "string"])
async def test_bad_sleep_arguments_are_typed_errors(make_engine: Any, kind: str) -> None:
    engine = await make_engine(bad_sleep)
    with pytest.raises(WorkflowFailed) as err:
        await (await engine.start(bad_sleep, kind)).result(timeout=5)
    assert err.value.cause_type == "perdure.errors.InvalidConfiguration"


@workflow
async def sleep_until_wf(when: datetime) -> str:
    await perdure.sleep_until(when)
    return "woke"


async def test_sleep_until_an_aware_datetime(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(sleep_until_wf, clock=clock)
    target = clock.now() + timedelta(hours=2)
    handle = await engine.start(sleep_until_wf, target.astimezone(UTC))
    await wait_for_status(handle, "waiting")
    clock.advance(timedelta(hours=2))
    assert await handle.result(timeout=5) == "woke"


# -- signals --------------------------------------------------------------------------------

@dataclasses.dataclass
class Approval:
    by: str
    level: int


@workflow
async def approval(n: int) -> list[Any]:
    got = []
    for _ in range(n):
        got.append(await perdure.wait_for_signal("approved", timeout=timedelta(hours=48)))
    return got


async def test_signal_wakes_a_parked_run_and_keeps_send_order(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(approval, clock=clock, park_after=0.01)
    handle = await engine.start(approval, 3)
    await wait_for_status(handle, "waiting")
    # Buffered: the second and third arrive before the run waits for them.
    assert await handle.signal("approved", {"by": "ana"}) is True
    assert await handle.signal("approved", Approval("bo", 2)) is True
    assert await handle.signal("approved", [1, 2]) is True
    assert await handle.result(timeout=5) == [{"by": "ana"}, Approval("bo", 2), [1, 2]]
    entries = [(e.kind, e.name, e.status) for e in await handle.journal()]
    assert entries == [("signal", "approved", "completed")] * 3


async def test_signal_in_one_process_resumes_without_parking(make_engine: Any) -> None:
    engine = await make_engine(approval)
    handle = await engine.start(approval, 1)
    await wait_for_journal(handle, lambda j: len(j) == 1)  # the timeout is journaled
    await handle.signal("approved", "yes")
    assert await handle.result(timeout=5) == ["yes"]


async def test_signal_idempotency_key_makes_a_resend_a_no_op(make_engine: Any) -> None:
    engine = await make_engine(approval)
    handle = await engine.start(approval, 2)
    assert await handle.signal("approved", 1, idempotency_key="mail-123") is True
    assert await handle.signal("approved", 1, idempotency_key="mail-123") is False
    await handle.signal("approved", 2)
    assert await handle.result(timeout=5) == [1, 2]


async def test_signal_timeout_raises_signal_timeout(make_engine: Any,
                                                    clock: VirtualClock) -> None:
    # park_after=0.01: the wait parks at once (status waiting) instead of lingering 5 real
    # seconds in memory first; nothing this test checks depends on the lingering
    engine = await make_engine(approval, clock=clock, park_after=0.01)
    handle = await engine.start(approval, 1)
    await wait_for_status(handle, "waiting")
    clock.advance(timedelta(hours=48))
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=5)
    assert err.value.cause_type == "perdure.errors.SignalTimeout"


async def test_signal_bad_input_is_typed(make_engine: Any) -> None:
    engine = await make_engine(approval)
    handle = await engine.start(approval, 1)
    with pytest.raises(InvalidConfiguration):
        await handle.signal(42, "x")  # type: ignore[arg-type]
    with pytest.raises(SerializationError):
        await handle.signal("approved", object())
    with pytest.raises(RunNotFound):
        await engine.signal("no-such-run", "approved", 1)
    await handle.signal("approved", "ok")
    await handle.result(timeout=5)
    with pytest.raises(RunFinished):
        await handle.signal("approved", "late")
    assert [e.status for e in await handle.journal()] == ["completed"]
    with pytest.raises(NotInWorkflow):
        perdure.wait_for_signal("approved")


async def test_no_lost_wakeup_when_signal_races_the_park(
        make_engine: Any, clock: VirtualClock) -> None:
    """A signal committed while the run is parking must wake it: the park checks for it in
    the same transaction. Force the race: the signal commits *inside* the window between the
    run's last check for a signal and its park. If the wake-up were lost, the run would wait
    for the 48 h timeout, which the virtual clock never reaches."""
    engine = await make_engine(approval, clock=clock, park_after=0.01)
    store = engine.store
    original = store.park_run
    raced = asyncio.Event()

    async def park_after_a_signal(*args: Any, **kwargs: Any) -> None:
        if not raced.is_set():
            raced.set()
            # the run has checked for a signal and found none; now one arrives
            await store.send_signal("race", "approved", '"raced"', None, clock.time())
        await original(*args, **kwargs)

    store.park_run = park_after_a_signal  # type: ignore[method-assign]
    handle = await engine.start(approval, 1, id="race")
    assert await handle.result(timeout=5) == ["raced"]
    assert raced.is_set()


# -- cancellation ---------------------------------------------------------------------------

async def undo(text: str) -> None:
    log.append(f"undo {text}")


@step(compensate=undo)
async def doable(text: str) -> str:
    log.append(text)
    return text


@workflow
async def cancellable() -> str:
    await doable("a")
    try:
        await perdure.wait_for_signal("never")
    except Cancelled:
        await note("cleanup")
        raise
    return "done"


async def test_cancel_a_parked_run_runs_cleanup_then_compensations(
        make_engine: Any) -> None:
    engine = await make_engine(cancellable, park_after=0.01)
    handle = await engine.start(cancellable)
    await wait_for_status(handle, "waiting")
    assert await handle.cancel() is True
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)
    assert log == ["a", "cleanup", "undo a"]
    assert (await handle.status()).status is RunStatus.CANCELLED
    kinds = [(e.kind, e.name, e.status) for e in await handle.journal()]
    assert kinds == [("step", "doable", "completed"), ("signal", "never", "cancelled"),
                     ("step", "note", "completed"), ("compensation", "doable", "completed")]
    assert await handle.cancel() is False  # finished: a no-op that says so
    with pytest.raises(RunNotFound):
        await engine.cancel("nope")


async def test_cancel_a_run_waiting_in_memory(make_engine: Any) -> None:
    engine = await make_engine(cancellable)
    handle = await engine.start(cancellable)
    await wait_for_journal(handle, lambda j: len(j) == 1)
    await handle.cancel()
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)
    assert log == ["a", "cleanup", "undo a"]


@workflow
async def long_runner() -> None:
    await perdure.sleep(timedelta(days=30))


async def test_deadline_cancels_the_run(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(long_runner, clock=clock)
    handle = await engine.start(long_runner, deadline=timedelta(hours=1))
    await wait_for_status(handle, "waiting")
    clock.advance(timedelta(hours=1))
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)


# -- children -------------------------------------------------------------------------------

@workflow
async def child(n: int) -> int:
    await note(f"child {n}")
    if n < 0:
        raise ValueError("negative")
    return n * 10


@workflow
async def parent(n: int) -> int:
    kid = await perdure.start_child(child, n)
    try:
        return await kid.result()
    except ChildFailed as exc:
        await note(f"child failed: {exc.cause_type}")
        return -1


async def test_child_workflow_result_and_link(make_engine: Any) -> None:
    engine = await make_engine(parent, child)
    handle = await engine.start(parent, 4, id="p1")
    assert await handle.result(timeout=5) == 40
    kids = await engine.list_runs(parent_id="p1")
    assert [(k.id, k.workflow, k.parent_id, k.status) for k in kids] == \
        [("p1/0", "child", "p1", RunStatus.COMPLETED)]
    assert [e.kind for e in await handle.journal()] == ["child", "join"]


async def test_child_failure_surfaces_as_child_failed(make_engine: Any) -> None:
    engine = await make_engine(parent, child)
    assert await (await engine.start(parent, -1)).result(timeout=5) == -1
    assert log == ["child -1", "child failed: ValueError"]


@workflow
async def orphan_parent() -> None:
    await perdure.start_child(sleeper, 1)


async def test_child_of_unregistered_workflow_blocks_the_parent(make_engine: Any) -> None:
    engine = await make_engine(orphan_parent)
    with pytest.raises(RunBlocked, match=r"'sleeper' version '1'.*not registered"):
        await (await engine.start(orphan_parent)).result(timeout=5)


@workflow
async def waits_forever_child() -> None:
    await perdure.wait_for_signal("never")


@workflow
async def parent_of_waiter() -> None:
    kid = await perdure.start_child(waits_forever_child)
    await kid.result()


async def test_cancel_propagates_to_running_children(make_engine: Any) -> None:
    engine = await make_engine(parent_of_waiter, waits_forever_child, park_after=0.01)
    handle = await engine.start(parent_of_waiter, id="pp")
    kid = engine.handle("pp/0")
    await wait_for_status(kid, "waiting")
    await handle.cancel()
    with pytest.raises(RunCancelled):
        await handle.result(timeout=5)
    with pytest.raises(RunCancelled):
        await kid.result(timeout=5)


# -- gather ---------------------------------------------------------------------------------

@step(retry=RetryPolicy(max_attempts=1))
async def maybe(x: int) -> int:
    await asyncio.sleep(0.001 * (5 - x))
    log.append(f"maybe {x}")
    if x == 3:
        raise ValueError("three")
    return x


@workflow
async def fan_out(n: int) -> tuple[int, ...]:
    return await perdure.gather(*(maybe(i) for i in range(n)))


async def test_gather_numbers_in_call_order_and_journals_each(make_engine: Any) -> None:
    engine = await make_engine(fan_out)
    handle = await engine.start(fan_out, 3)
    assert await handle.result(timeout=5) == (0, 1, 2)
    assert [(e.seq, e.name) for e in await handle.journal()] == \
        [(0, "maybe"), (1, "maybe"), (2, "maybe")]


async def test_gather_journals_every_result_before_the_error(make_engine: Any) -> None:
    engine = await make_engine(fan_out)
    handle = await engine.start(fan_out, 5)
    with pytest.raises(WorkflowFailed, match="three"):
        await handle.result(timeout=5)
    statuses = [(e.seq, e.status) for e in await handle.journal()]
    assert statuses == [(0, "completed"), (1, "completed"), (2, "completed"), (3, "failed"),
                        (4, "completed")]


@workflow
async def gather_waits() -> tuple[Any, Any]:
    return await perdure.gather(perdure.wait_for_signal("a"), perdure.wait_for_signal("b"))


async def test_gather_of_waits_parks_once_for_all(make_engine: Any) -> None:
    engine = await make_engine(gather_waits, park_after=0.01)
    handle = await engine.start(gather_waits)
    await wait_for_status(handle, "waiting")
    await handle.signal("b", 2)
    await handle.signal("a", 1)
    assert await handle.result(timeout=5) == (1, 2)


async def test_close_parks_runs_waiting_in_memory_at_once(make_engine: Any) -> None:
    engine = await make_engine(approval, shutdown_grace=30.0)
    handle = await engine.start(approval, 1)
    await wait_for_journal(handle, lambda j: len(j) == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await engine.close()
    assert loop.time() - started < 5  # parked, not waited out for the 30 s grace
    client = await make_engine(approval)
    info = await wait_for_status(client.handle(handle.id), "waiting")
    assert info.status is RunStatus.WAITING
    await client.handle(handle.id).signal("approved", "late but fine")
    assert await client.handle(handle.id).result(timeout=5) == ["late but fine"]
