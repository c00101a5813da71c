"""Non-determinism blocks a run with a readable message; resume after the fix completes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import RunBlocked, RunStatus, VirtualClock, WorkflowFailed, step, workflow
from perdure.testing import wait_for_status

ORDER = ["reserve", "charge"]
FAIL = {"ship": True}
executed: list[str] = []


@step
async def reserve() -> str:
    executed.append("reserve")
    return "reserved"


@step
async def charge() -> str:
    executed.append("charge")
    return "charged"


@step(max_attempts=1)
async def ship() -> str:
    executed.append("ship")
    if FAIL["ship"]:
        raise RuntimeError("courier down")
    return "shipped"


STEPS = {"reserve": reserve, "charge": charge}


@workflow
async def ordered() -> list[str]:
    out = [await STEPS[ORDER[0]]()]
    await perdure.sleep(timedelta(hours=1))
    out.append(await STEPS[ORDER[1]]())
    return out


@pytest.fixture(autouse=True)
def _reset() -> None:
    ORDER[:] = ["reserve", "charge"]
    FAIL["ship"] = True
    executed.clear()


async def test_changed_step_order_blocks_and_resume_after_restoring_completes(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(ordered, clock=clock)
    handle = await engine.start(ordered)
    await wait_for_status(handle, "waiting")
    ORDER[:] = ["charge", "reserve"]  # a deploy that reordered the steps
    clock.advance(timedelta(hours=1))
    info = await wait_for_status(handle, "blocked")
    assert info.blocked_reason is not None
    assert "non-determinism at seq 0" in info.blocked_reason
    assert "step 'reserve'" in info.blocked_reason and "step 'charge'" in info.blocked_reason
    with pytest.raises(RunBlocked, match="non-determinism"):
        await handle.result(timeout=5)
    journal_before = await handle.journal()
    assert [(e.kind, e.name) for e in journal_before] == [("step", "reserve"), ("sleep", "sleep")]
    ORDER[:] = ["reserve", "charge"]  # the fix: the original code is back
    await engine.resume(handle.id)
    assert await handle.result(timeout=5) == ["reserved", "charged"]
    assert executed == ["reserve", "charge"]  # reserve ran once: replayed, not re-executed


@workflow
async def grows() -> str:
    await reserve()
    return "done"


async def test_resume_refuses_runs_that_are_not_blocked_or_failed(make_engine: Any) -> None:
    engine = await make_engine(grows)
    handle = await engine.start(grows)
    await handle.result(timeout=5)
    with pytest.raises(perdure.PerdureError, match="only blocked or failed"):
        await engine.resume(handle.id)
    with pytest.raises(perdure.RunNotFound):
        await engine.resume("nope")


async def undo_charge() -> None:
    executed.append("refund")


@step(compensate=undo_charge)
async def charge_c() -> str:
    executed.append("charge")
    return "charged"


@workflow
async def saga_resume() -> str:
    await reserve()
    await charge_c()
    return await ship()


async def test_resume_a_failed_run_redoes_the_failed_and_compensated_steps(
        make_engine: Any) -> None:
    engine = await make_engine(saga_resume)
    handle = await engine.start(saga_resume)
    with pytest.raises(WorkflowFailed, match="courier down"):
        await handle.result(timeout=5)
    assert executed == ["reserve", "charge", "ship", "refund"]
    FAIL["ship"] = False  # the fix
    await engine.resume(handle.id)
    assert await handle.result(timeout=5) == "shipped"
    # reserve (no compensation) kept its result; charge was refunded, so it runs again
    assert executed == ["reserve", "charge", "ship", "refund", "charge", "ship"]
    assert (await handle.status()).status is RunStatus.COMPLETED
