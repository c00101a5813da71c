"""Bad input gets a clear, typed error at the call that made it; nothing persisted is harmed."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    InvalidConfiguration,
    NotInWorkflow,
    PerdureError,
    RunNotFound,
    SerializationError,
    UnknownWorkflowError,
    WorkflowFailed,
    step,
    workflow,
)


@step
async def double(x: int) -> int:
    return x * 2


@workflow
async def known(x: int) -> int:
    return await double(x)


@workflow
async def not_registered(x: int) -> int:
    return x


@workflow
async def returns_lock() -> Any:
    return threading.Lock()


@step
async def lock_step() -> Any:
    return threading.Lock()


@workflow
async def step_returns_lock() -> str:
    try:
        await lock_step()
    except SerializationError as exc:
        return f"caught: {exc}"
    return "no error"


async def _journal_of(engine: Engine, run_id: str) -> list[Any]:
    return [(e.seq, e.kind, e.name, e.status, e.output) for e in await engine.journal(run_id)]


async def test_unknown_and_unregistered_workflows(make_engine: Any) -> None:
    engine = await make_engine(known)
    good = await engine.start(known, 2, id="good")
    assert await good.result(timeout=5) == 4
    before = await _journal_of(engine, "good")
    with pytest.raises(UnknownWorkflowError, match="not registered"):
        await engine.start(not_registered, 1)
    with pytest.raises(UnknownWorkflowError):
        await engine.start("no_such_workflow", 1)
    with pytest.raises(UnknownWorkflowError, match="not a @workflow"):
        await engine.start(lambda: None)  # type: ignore[arg-type]
    assert await _journal_of(engine, "good") == before
    assert [r.id for r in await engine.list_runs()] == ["good"]


async def test_unencodable_argument_persists_nothing(make_engine: Any) -> None:
    engine = await make_engine(known)
    with pytest.raises(SerializationError, match="x"):
        await engine.start(known, threading.Lock(), id="bad")  # type: ignore[arg-type]
    with pytest.raises(RunNotFound):
        await engine.handle("bad").status()
    with pytest.raises(TypeError):
        await engine.start(known, 1, 2)  # type: ignore[call-arg]
    assert await engine.list_runs() == []


async def test_unencodable_results(make_engine: Any) -> None:
    engine = await make_engine(returns_lock, step_returns_lock)
    with pytest.raises(WorkflowFailed) as err:
        await (await engine.start(returns_lock)).result(timeout=5)
    assert err.value.cause_type == "perdure.errors.SerializationError"
    handle = await engine.start(step_returns_lock)
    result = await handle.result(timeout=5)
    assert result.startswith("caught: ") and "lock_step" in result
    [entry] = await handle.journal()
    assert entry.status == "failed" and entry.attempts == 1  # not retried: it cannot help


def test_duplicate_workflow_names_are_refused(db_url: str) -> None:
    @workflow(name="known")
    async def impostor(x: int) -> int:
        return x

    with pytest.raises(InvalidConfiguration, match="two workflows are named 'known'"):
        Engine(db_url, workflows=[known, impostor])
    with pytest.raises(InvalidConfiguration, match="not a workflow"):
        Engine(db_url, workflows=[double])  # type: ignore[list-item]


@pytest.mark.parametrize("prefix", ["", "Perdure", "1x", "drop table;", "a-b", "x" * 41])
def test_invalid_prefix(db_url: str, prefix: str) -> None:
    with pytest.raises(InvalidConfiguration, match="table prefix"):
        Engine(db_url, workflows=[known], table_prefix=prefix)


@pytest.mark.parametrize("url", ["", "mysql://x", "sqlite://", "sqlite:/x.db", "perdure.db",
                                 "sqlite:///x.db?synchronous=sometimes", "sqlite:///x.db?foo=1"])
def test_invalid_url(url: str) -> None:
    with pytest.raises(InvalidConfiguration):
        Engine(url, workflows=[known])


def test_url_password_is_never_echoed() -> None:
    with pytest.raises(InvalidConfiguration) as err:
        Engine("mysql://ana:hunter2@db.example/app")
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("option", [{"concurrency": 0}, {"lease": -1}, {"heartbeat": 20.0},
                                    {"park_after": 0}, {"concurrency": 1.5}])
def test_invalid_options(db_url: str, option: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfiguration):
        Engine(db_url, workflows=[known], **option)


async def test_result_of_unknown_id(make_engine: Any) -> None:
    engine = await make_engine(known)
    with pytest.raises(RunNotFound, match="nope"):
        await engine.handle("nope").result(timeout=1)
    with pytest.raises(RunNotFound):
        await engine.handle("nope").journal()


async def test_in_workflow_functions_outside_a_workflow() -> None:
    with pytest.raises(NotInWorkflow, match="inside a running workflow"):
        double(1)  # type: ignore[unused-coroutine]
    for fn in (perdure.now, perdure.uuid4, perdure.random, perdure.run_id):
        with pytest.raises(NotInWorkflow):
            fn()
    with pytest.raises(NotInWorkflow, match="inside a step"):
        perdure.step_key()
    assert issubclass(NotInWorkflow, PerdureError)


async def test_engine_must_be_open(db_url: str) -> None:
    engine = Engine(db_url, workflows=[known])
    with pytest.raises(PerdureError, match="not open"):
        await engine.start(known, 1)


def test_decorator_misuse() -> None:
    with pytest.raises(InvalidConfiguration, match="async def"):
        workflow(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration, match="timeout"):
        step(timeout=-1)(double.fn)
    with pytest.raises(InvalidConfiguration, match="max_attempts"):
        step(max_attempts=0)(double.fn)
    with pytest.raises(InvalidConfiguration):
        workflow(version="")(known.fn)


@dataclasses.dataclass
class Box:
    n: int


async def test_id_reused_by_another_workflow(make_engine: Any) -> None:
    @workflow(name="other")
    async def other(b: Box) -> int:
        return b.n

    engine = await make_engine(known, other)
    await (await engine.start(known, 1, id="shared")).result(timeout=5)
    with pytest.raises(PerdureError, match="already used by a run of workflow 'known'"):
        await engine.start(other, Box(1), id="shared")
