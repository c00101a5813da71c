"""A step cannot take the worker down or escape the workflow's handler, and a failed
compensation is visible wherever the run's failure is."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from perdure import RetryPolicy, RunStatus, StepFailed, WorkflowFailed, step, workflow
from perdure.cli.main import main

TWICE = RetryPolicy(max_attempts=2, initial_delay=0.0, jitter=0.0)
calls: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@step(retry=TWICE)
async def exits() -> str:
    calls.append("exits")
    sys.exit(3)


@step(retry=TWICE)
def exits_in_thread() -> str:
    calls.append("exits_in_thread")
    raise SystemExit("bye")


@step(retry=TWICE, timeout=5.0)
async def exits_with_timeout() -> str:
    calls.append("exits_with_timeout")
    raise SystemExit(4)


class Odd(BaseException):
    """Neither an Exception nor cancellation."""


@step(retry=TWICE)
async def raises_base() -> str:
    calls.append("raises_base")
    raise Odd("odd")


STEPS = {s.name: s for s in (exits, exits_in_thread, exits_with_timeout, raises_base)}


@workflow
async def handles(name: str) -> str:
    try:
        return await STEPS[name]()
    except StepFailed as exc:
        return f"handled {exc.cause_type} after {exc.attempts}"


@pytest.mark.parametrize(("name", "cause"), [
    ("exits", "SystemExit"), ("exits_in_thread", "SystemExit"),
    ("exits_with_timeout", "SystemExit"),
    ("raises_base", f"{__name__}.Odd")])
async def test_a_step_raising_a_base_exception_is_a_failed_attempt(
        make_engine: Any, name: str, cause: str) -> None:
    engine = await make_engine(handles)
    handle = await engine.start(handles, name)
    assert await handle.result(timeout=10) == f"handled {cause} after 2"
    assert calls == [name, name]  # retried like any failure; the worker lives on
    [entry] = await handle.journal()
    assert (entry.status, entry.attempts) == ("failed", 2)
    assert entry.error_info is not None and entry.error_info.type == cause


@workflow
async def exits_unhandled() -> str:
    return await exits()


async def test_an_unhandled_system_exit_fails_the_run_not_the_worker(make_engine: Any) -> None:
    engine = await make_engine(exits_unhandled, handles)
    handle = await engine.start(exits_unhandled)
    with pytest.raises(WorkflowFailed, match="SystemExit"):
        await handle.result(timeout=10)
    # The same worker still drives runs.
    assert await (await engine.start(handles, "raises_base")).result(timeout=10) == \
        f"handled {__name__}.Odd after 2"


@workflow
async def workflow_exits() -> str:
    raise SystemExit(5)


async def test_a_workflow_raising_system_exit_fails_the_run(make_engine: Any) -> None:
    engine = await make_engine(workflow_exits)
    handle = await engine.start(workflow_exits)
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert err.value.cause_type == "SystemExit"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


@step(max_attempts=1)
async def unprintable() -> str:
    raise Unprintable("secret")


@workflow
async def catches_unprintable() -> str:
    try:
        return await unprintable()
    except StepFailed as exc:
        return f"caught {exc.cause_type}: {exc.cause_message}"


async def test_an_exception_whose_str_raises_still_reaches_the_handler(
        make_engine: Any) -> None:
    engine = await make_engine(catches_unprintable)
    handle = await engine.start(catches_unprintable)
    result = await handle.result(timeout=10)
    assert result.startswith(f"caught {__name__}.Unprintable: ")
    assert "Unprintable('secret')" in result  # the repr stands in for the message
    [entry] = await handle.journal()
    assert entry.status == "failed"


# -- a compensation that exhausts its retries is reported -----------------------------------

async def broken_undo(item: str) -> None:
    calls.append(f"undo {item}")
    raise ValueError("undo failed")


async def fine_undo(item: str) -> None:
    calls.append(f"undo {item}")


@step(compensate=broken_undo, retry=TWICE)
async def reserve_broken(item: str) -> str:
    return item


@step(compensate=fine_undo)
async def reserve_fine(item: str) -> str:
    return item


@workflow
async def half_undone() -> None:
    await reserve_fine("first")
    await reserve_broken("second")
    raise KeyError("boom")


async def test_a_failed_compensation_is_reported_by_result_status_and_list(
        make_engine: Any, db_url: str, capsys: Any) -> None:
    engine = await make_engine(half_undone)
    handle = await engine.start(half_undone, id="half-1")
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert calls == ["undo second", "undo second", "undo first"]
    assert err.value.cause_type == "KeyError"
    assert err.value.failed_compensations == ("reserve_broken",)
    assert "compensation failed for step 'reserve_broken'" in str(err.value)
    info = await handle.status()
    assert info.status is RunStatus.FAILED
    assert info.failed_compensations == ("reserve_broken",)
    [listed] = await engine.list_runs(status="failed")
    assert listed.failed_compensations == ("reserve_broken",)
    await asyncio.to_thread(main, ["runs", "list", "--db", db_url])
    out = capsys.readouterr().out
    assert "half-1" in out and "compensation failed: reserve_broken" in out
    await asyncio.to_thread(main, ["runs", "show", "half-1", "--db", db_url])
    assert "compensation failed: reserve_broken" in capsys.readouterr().out


@workflow
async def all_undone() -> None:
    await reserve_fine("only")
    raise KeyError("boom")


async def test_a_fully_compensated_run_reports_no_failed_compensation(make_engine: Any) -> None:
    engine = await make_engine(all_undone)
    handle = await engine.start(all_undone)
    with pytest.raises(WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert err.value.failed_compensations == ()
    assert "compensation" not in str(err.value)
    assert (await handle.status()).failed_compensations == ()
