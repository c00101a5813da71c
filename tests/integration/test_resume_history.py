"""Resuming a failed, compensated run: new idempotency keys for what executes again, and the
history of what happened before the resume kept for an auditor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import perdure
from perdure import RunBlocked, RunStatus, WorkflowFailed, step, workflow
from perdure.cli.main import main
from perdure.testing import wait_for_status

FAIL = {"ship": 1}
#: the payment provider's ledger: what it was asked to do, with which idempotency key
payments: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    FAIL["ship"] = 1
    payments.clear()


async def refund(order: str, result: str) -> None:
    payments.append(("refund", result))


@step(compensate=refund)
async def charge(order: str) -> str:
    key = perdure.step_key()
    payments.append(("charge", key))
    return key


@step(max_attempts=1)
async def ship(order: str) -> str:
    if FAIL["ship"] > 0:
        FAIL["ship"] -= 1
        raise RuntimeError("courier down")
    return f"shipped {order}"


@workflow
async def order_flow(order: str) -> str:
    key = await charge(order)
    await ship(order)
    return key


async def test_resume_after_compensation_charges_again_under_a_new_key(
        make_engine: Any) -> None:
    engine = await make_engine(order_flow)
    handle = await engine.start(order_flow, "o-1", id="p-1")
    with pytest.raises(WorkflowFailed, match="courier down"):
        await handle.result(timeout=10)
    assert payments == [("charge", "p-1:0"), ("refund", "p-1:0")]
    assert (await handle.status()).generation == 0

    await engine.resume(handle.id)
    # A provider that deduplicates by key would answer the refunded charge for "p-1:0".
    assert await handle.result(timeout=10) == "p-1:0:g1"
    assert payments == [("charge", "p-1:0"), ("refund", "p-1:0"), ("charge", "p-1:0:g1")]
    info = await handle.status()
    assert (info.status, info.generation) == (RunStatus.COMPLETED, 1)


async def test_each_resume_of_a_failed_run_is_a_new_generation(make_engine: Any) -> None:
    FAIL["ship"] = 2
    engine = await make_engine(order_flow)
    handle = await engine.start(order_flow, "o-2", id="p-2")
    for _ in range(2):
        with pytest.raises(WorkflowFailed):
            await handle.result(timeout=10)
        await engine.resume(handle.id)
    assert await handle.result(timeout=10) == "p-2:0:g2"
    assert [key for what, key in payments if what == "charge"] == ["p-2:0", "p-2:0:g1",
                                                                    "p-2:0:g2"]
    history = await handle.history()
    assert [(r.generation, r.status) for r in history] == [(0, RunStatus.FAILED),
                                                           (1, RunStatus.FAILED)]


async def test_the_failure_and_its_compensations_stay_in_the_history(make_engine: Any) -> None:
    engine = await make_engine(order_flow)
    handle = await engine.start(order_flow, "o-3", id="p-3")
    with pytest.raises(WorkflowFailed):
        await handle.result(timeout=10)
    before = [(e.seq, e.kind, e.name, e.status) for e in await handle.journal()]
    assert before == [(0, "step", "charge", "completed"), (1, "step", "ship", "failed"),
                      (2, "compensation", "charge", "completed")]
    assert await handle.history() == []

    await engine.resume(handle.id)
    await handle.result(timeout=10)
    # The journal replay reads is the current generation's ...
    assert [(e.seq, e.kind, e.name, e.status) for e in await handle.journal()] == [
        (0, "step", "charge", "completed"), (1, "step", "ship", "completed")]
    # ... and what the resume superseded is kept, with how the run had ended.
    [record] = await handle.history()
    assert (record.generation, record.status) == (0, RunStatus.FAILED)
    assert record.error is not None
    assert record.error.type == "perdure.errors.StepFailed"
    assert record.error.message == \
        "step 'ship' failed after 1 attempt(s): RuntimeError: courier down"
    assert [(e.seq, e.kind, e.name, e.status) for e in record.superseded] == before
    assert record.superseded[0].output == '"p-3:0"'
    assert record.ended_at <= record.resumed_at
    assert await engine.history(handle.id) == [record]


@workflow
async def ship_later() -> str:
    return "shipped"


@workflow
async def needs_child(order: str) -> str:
    key = await charge(order)
    child = await perdure.start_child(ship_later)
    return f"{key} {await child.result()}"


async def test_resuming_a_blocked_run_keeps_keys_and_records_the_block(
        make_engine: Any) -> None:
    engine = await make_engine(needs_child)
    handle = await engine.start(needs_child, "o-4", id="p-4")
    with pytest.raises(RunBlocked):
        await handle.result(timeout=10)
    await engine.close()
    fixed = await make_engine(needs_child, ship_later)
    await fixed.resume(handle.id)
    handle = fixed.handle(handle.id)
    # Nothing was undone, so nothing needs a new key: the journaled charge replays.
    assert await handle.result(timeout=10) == "p-4:0 shipped"
    assert payments == [("charge", "p-4:0")]
    assert (await handle.status()).generation == 0
    [record] = await handle.history()
    assert (record.generation, record.status, record.superseded) == (0, RunStatus.BLOCKED, ())
    assert record.blocked_reason is not None and "ship_later" in record.blocked_reason


async def test_runs_show_prints_the_history(make_engine: Any, db_url: str,
                                            capsys: Any) -> None:
    engine = await make_engine(order_flow)
    handle = await engine.start(order_flow, "o-5", id="p-5")
    with pytest.raises(WorkflowFailed):
        await handle.result(timeout=10)
    await engine.resume(handle.id)
    await wait_for_status(handle, "completed")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["runs", "show", "p-5", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "generation 1" in out
    assert "generation 0 ended failed: perdure.errors.StepFailed: step 'ship' failed after 1 " \
        "attempt(s): RuntimeError: courier down" in out
    rows = [line.split()[:4] for line in out.splitlines() if line[:1].isdigit()]
    assert rows == [  # the superseded entries, then the current journal
        ["0", "step", "charge", "completed"], ["1", "step", "ship", "failed"],
        ["2", "compensation", "charge", "completed"],
        ["0", "step", "charge", "completed"], ["1", "step", "ship", "completed"]]
