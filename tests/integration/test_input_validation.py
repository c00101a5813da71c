"""Names, durations and limits are checked at the call that received them, the same on every
backend: a typed error there, never a driver error, a lost wake-up, a hung wait or a failed run.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    InvalidConfiguration,
    RetryPolicy,
    RunStatus,
    SerializationError,
    step,
    workflow,
)
from perdure.testing import wait_for_status

NUL = "order\x00-1"
SURROGATE = "order-\ud800"
BAD_NAMES = [NUL, SURROGATE]


@step
async def noop() -> str:
    return "done"


@workflow
async def waits(name: str) -> str:
    return str(await perdure.wait_for_signal(name))


@workflow
async def anything(value: Any) -> str:
    return type(value).__name__


@workflow
async def parent(child_id: str) -> str:
    child = await perdure.start_child(anything, 1, id=child_id)
    return await child.result()


@workflow
async def sleeps(kind: str) -> str:
    duration: Any = {"inf": math.inf, "nan": math.nan, "huge": 1e300,
                     "max": timedelta.max, "bigint": 10**400}[kind]
    try:
        await perdure.sleep(duration)
    except InvalidConfiguration as exc:
        return f"refused: {exc}"
    return "slept"


@workflow
async def signal_timeout(kind: str) -> str:
    timeout: Any = {"nan": math.nan, "inf": math.inf, "max": timedelta.max}[kind]
    try:
        await perdure.wait_for_signal("go", timeout=timeout)
    except InvalidConfiguration as exc:
        return f"refused: {exc}"
    return "got it"


@pytest.mark.parametrize("bad", BAD_NAMES, ids=["nul", "surrogate"])
async def test_run_ids_signal_names_and_keys_are_checked_at_the_call(
        make_engine: Any, bad: str) -> None:
    # park_after=0.01: the wait parks at once (status waiting) instead of lingering 5 real
    # seconds in memory first; nothing this test checks depends on the lingering
    engine = await make_engine(waits, park_after=0.01)
    handle = await engine.start(waits, "go", id="w-1")
    await wait_for_status(handle, "waiting")
    with pytest.raises(InvalidConfiguration, match="run id"):
        await engine.start(waits, "go", id=bad)
    with pytest.raises(InvalidConfiguration, match="run id"):
        engine.handle(bad)
    for call in (engine.status, engine.journal, engine.cancel, engine.resume, engine.pause,
                 engine.incarnations):
        with pytest.raises(InvalidConfiguration, match="run id"):
            await call(bad)
    with pytest.raises(InvalidConfiguration, match="run id"):
        await engine.fork(bad, from_seq=0)
    with pytest.raises(InvalidConfiguration, match="run id"):
        await engine.fork("w-1", from_seq=0, id=bad)
    with pytest.raises(InvalidConfiguration, match="run id"):
        await engine.export_runs([bad])
    with pytest.raises(InvalidConfiguration, match="run id"):
        await engine.signal(bad, "go", 1)
    with pytest.raises(InvalidConfiguration, match="signal name"):
        await handle.signal(bad, 1)
    with pytest.raises(InvalidConfiguration, match="idempotency key"):
        await handle.signal("go", 1, idempotency_key=bad)
    with pytest.raises(InvalidConfiguration, match="workflow"):
        await engine.list_runs(workflow=bad)
    with pytest.raises(InvalidConfiguration, match="parent"):
        await engine.list_runs(parent_id=bad)
    # Nothing was written by any of it, and the run still works.
    assert [r.id for r in await engine.list_runs()] == ["w-1"]
    await handle.signal("go", 7)
    assert await handle.result(timeout=10) == "7"


@pytest.mark.parametrize("bad", BAD_NAMES, ids=["nul", "surrogate"])
async def test_a_bad_signal_name_in_a_workflow_is_its_own_error(make_engine: Any,
                                                                bad: str) -> None:
    engine = await make_engine(waits)
    handle = await engine.start(waits, bad)
    with pytest.raises(perdure.WorkflowFailed) as err:
        await handle.result(timeout=10)
    assert err.value.cause_type == "perdure.errors.InvalidConfiguration"
    assert "signal name" in err.value.cause_message


@pytest.mark.parametrize("bad", BAD_NAMES, ids=["nul", "surrogate"])
async def test_a_bad_child_id_fails_the_parent_at_the_call(make_engine: Any, bad: str) -> None:
    engine = await make_engine(parent, anything)
    with pytest.raises(perdure.WorkflowFailed) as err:
        await (await engine.start(parent, bad)).result(timeout=10)
    assert err.value.cause_type == "perdure.errors.InvalidConfiguration"
    assert [r.workflow for r in await engine.list_runs()] == ["parent"]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=["nul", "surrogate"])
def test_bad_workflow_and_step_names(bad: str) -> None:
    with pytest.raises(InvalidConfiguration, match="workflow name"):
        workflow(name=bad)(waits.fn)
    with pytest.raises(InvalidConfiguration, match="workflow version"):
        workflow(version=bad)(waits.fn)
    with pytest.raises(InvalidConfiguration, match="step name"):
        step(name=bad)(noop.fn)


@pytest.mark.parametrize("option", ["lease", "poll_interval", "park_after", "heartbeat",
                                    "shutdown_grace"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_engine_durations_must_be_finite(db_url: str, option: str, value: float) -> None:
    with pytest.raises(InvalidConfiguration, match=option):
        Engine(db_url, workflows=[waits], **{option: value})


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_step_timeouts_and_retry_delays_must_be_finite(value: float) -> None:
    with pytest.raises(InvalidConfiguration, match="timeout"):
        step(timeout=value)(noop.fn)
    for field in ("initial_delay", "max_delay", "multiplier", "jitter"):
        with pytest.raises(InvalidConfiguration, match=field):
            RetryPolicy(**{field: value})


def test_a_steep_back_off_is_capped_instead_of_overflowing() -> None:
    policy = RetryPolicy(max_attempts=5000, initial_delay=1.0, multiplier=10.0, max_delay=60.0,
                         jitter=0.0)
    assert policy.delay(4000) == 60.0


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1.0])
async def test_result_timeout_must_be_a_finite_duration(make_engine: Any,
                                                        timeout: float) -> None:
    engine = await make_engine(waits)
    handle = await engine.start(waits, "go")
    with pytest.raises(InvalidConfiguration, match="timeout"):
        await handle.result(timeout=timeout)


@pytest.mark.parametrize("kind", ["inf", "nan", "huge", "max", "bigint"])
async def test_an_endless_sleep_is_refused_at_the_call(make_engine: Any, kind: str) -> None:
    engine = await make_engine(sleeps)
    result = await (await engine.start(sleeps, kind)).result(timeout=10)
    assert result.startswith("refused: sleep duration")


@pytest.mark.parametrize("kind", ["nan", "inf", "max"])
async def test_an_endless_signal_timeout_is_refused_at_the_call(make_engine: Any,
                                                                kind: str) -> None:
    engine = await make_engine(signal_timeout)
    result = await (await engine.start(signal_timeout, kind)).result(timeout=10)
    assert result.startswith("refused: signal timeout")


async def test_an_endless_deadline_is_refused(make_engine: Any) -> None:
    engine = await make_engine(waits)
    for deadline in (timedelta.max, timedelta(days=10**8)):
        with pytest.raises(InvalidConfiguration, match="deadline"):
            await engine.start(waits, "go", deadline=deadline)
    assert await engine.list_runs() == []


@pytest.mark.parametrize("limit", [0, -1, 1.5, "10", True, None, 10**20])
async def test_list_runs_limit_is_checked(make_engine: Any, limit: Any) -> None:
    engine = await make_engine(waits)
    with pytest.raises(InvalidConfiguration, match="limit"):
        await engine.list_runs(limit=limit)


async def test_list_runs_limit_is_applied(make_engine: Any) -> None:
    engine = await make_engine(anything)
    for i in range(3):
        await (await engine.start(anything, i, id=f"a-{i}")).result(timeout=10)
    assert len(await engine.list_runs(limit=2)) == 2
    assert len(await engine.list_runs(status=RunStatus.COMPLETED, limit=5)) == 3


@dataclasses.dataclass
class ScriptBox:
    n: int


@pytest.fixture
def main_class() -> Iterator[type]:
    """A dataclass that lives in ``__main__``, as one defined in a script would."""
    cls = dataclasses.make_dataclass("ScriptBox", [("n", int)])
    cls.__module__ = "__main__"
    main = sys.modules["__main__"]
    main.ScriptBox = cls
    try:
        yield cls
    finally:
        delattr(main, "ScriptBox")


async def test_a_class_from_main_under_any_is_refused_at_start(make_engine: Any,
                                                               main_class: type) -> None:
    engine = await make_engine(anything)
    with pytest.raises(SerializationError, match=r"ScriptBox.*__main__"):
        await engine.start(anything, main_class(1))
    with pytest.raises(SerializationError, match="ScriptBox"):
        await engine.start(anything, [{"box": main_class(2)}])
    assert await engine.list_runs() == []
    # A class from an importable module travels as before.
    assert await (await engine.start(anything, ScriptBox(3))).result(timeout=10) == "ScriptBox"
