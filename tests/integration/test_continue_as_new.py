"""Continue-as-new: a long-lived run ends its incarnation and starts a fresh journal, keeping its
id; the old journals are kept as history; ``result()`` follows the chain."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    ContinueAsNew,
    NotInWorkflow,
    RunBlocked,
    RunStatus,
    VirtualClock,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.cli.main import main
from perdure.testing import wait_for_status

keys: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    keys.clear()


@step
async def tick(i: int) -> int:
    keys.append(perdure.step_key())
    return i


@workflow
async def counter(total: int, done: int = 0, every: int = 3) -> int:
    while done < total:
        await tick(done)
        done += 1
        if perdure.journal_size() >= every and done < total:
            raise ContinueAsNew(total, done, every)
    return done


async def test_a_loop_continues_as_new_and_result_follows_the_chain(make_engine: Any) -> None:
    engine = await make_engine(counter)
    handle = await engine.start(counter, 7, id="loop-1")
    assert await handle.result(timeout=10) == 7
    info = await handle.status()
    assert (info.status, info.incarnation, info.generation) == (RunStatus.COMPLETED, 2, 2)
    # Each incarnation numbered its steps from 0, under keys of its own generation.
    assert keys == ["loop-1:0", "loop-1:1", "loop-1:2", "loop-1:0:g1", "loop-1:1:g1",
                    "loop-1:2:g1", "loop-1:0:g2"]
    # The current journal is the last incarnation's; the earlier ones are history.
    assert [(e.seq, e.name, e.output) for e in await handle.journal()] == [(0, "tick", "6")]
    older = await handle.incarnations()
    assert [(i.number, i.generation, i.version) for i in older] == [(0, 0, "1"), (1, 1, "1")]
    assert [[e.output for e in i.journal] for i in older] == [["0", "1", "2"], ["3", "4", "5"]]
    assert counter.codec.decode_args(older[1].input) == ((7, 3, 3), {})
    assert await engine.incarnations("loop-1") == older
    # Continuing as new is not a resume: the history of resumes stays empty.
    assert await handle.history() == []


@workflow
async def sized() -> list[int]:
    sizes = [perdure.journal_size()]
    await tick(0)
    perdure.now()
    sizes.append(perdure.journal_size())
    await perdure.gather(tick(1), tick(2))
    sizes.append(perdure.journal_size())
    return sizes


@step(max_attempts=1)
async def size_in_a_step() -> int:
    return perdure.journal_size()


@workflow
async def sized_in_a_step() -> int:
    return await size_in_a_step()


async def test_journal_size_counts_the_operations_of_the_incarnation(make_engine: Any) -> None:
    engine = await make_engine(sized, sized_in_a_step)
    assert await (await engine.start(sized)).result(timeout=10) == [0, 2, 4]
    with pytest.raises(NotInWorkflow):
        perdure.journal_size()
    with pytest.raises(WorkflowFailed, match="NotInWorkflow"):
        await (await engine.start(sized_in_a_step)).result(timeout=10)


@workflow
async def listener(seen: list[str]) -> list[str]:
    got = await perdure.wait_for_signal("item", timeout=timedelta(days=1))
    seen = [*seen, got]
    if len(seen) < 3:
        raise ContinueAsNew(seen)
    return seen


async def test_unconsumed_signals_carry_over_to_the_next_incarnation(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(listener, clock=clock)
    handle = await engine.start(listener, [], id="listen-1")
    for item in ("a", "b", "c"):  # buffered before the run waits for them
        await handle.signal("item", item)
    assert await handle.result(timeout=10) == ["a", "b", "c"]
    assert (await handle.status()).incarnation == 2


@workflow
async def child_work(n: int) -> int:
    return n * 10


@workflow
async def spawner(rounds: int) -> list[str]:
    child = await perdure.start_child(child_work, rounds)
    await child.result()
    if rounds > 1:
        raise ContinueAsNew(rounds - 1)
    return [child.id]


async def test_children_of_each_incarnation_get_ids_of_their_own(make_engine: Any) -> None:
    engine = await make_engine(spawner, child_work)
    handle = await engine.start(spawner, 3, id="sp")
    assert await handle.result(timeout=10) == ["sp/0:g2"]
    kids = await engine.list_runs(workflow="child_work")
    assert sorted(k.id for k in kids) == ["sp/0", "sp/0:g1", "sp/0:g2"]
    assert {await engine.handle(k.id).result() for k in kids} == {30, 20, 10}


@workflow
async def bad_continue(mode: str) -> None:
    await tick(0)
    if mode == "signature":
        raise ContinueAsNew(1, 2, 3, 4)
    if mode == "value":
        raise ContinueAsNew(object())  # type: ignore[arg-type]
    try:
        raise ContinueAsNew("caught?")
    except Exception:  # a BaseException: an ``except Exception`` does not swallow it
        raise AssertionError("unreachable") from None


async def test_bad_arguments_raise_at_the_call_and_nothing_is_written(
        make_engine: Any) -> None:
    engine = await make_engine(bad_continue)
    for mode, error in (("signature", "TypeError"), ("value", "SerializationError")):
        handle = await engine.start(bad_continue, mode)
        with pytest.raises(WorkflowFailed) as failed:
            await handle.result(timeout=10)
        assert error in failed.value.cause_type
        info = await handle.status()
        assert info.incarnation == 0 and await handle.incarnations() == []
    handle = await engine.start(bad_continue, "loop")
    with pytest.raises(TimeoutError):  # it keeps continuing as new: never swallowed
        await handle.result(timeout=0.3)
    assert (await handle.status()).incarnation > 0
    await engine.cancel(handle.id)
    with pytest.raises(NotInWorkflow):
        ContinueAsNew(1)


@workflow(name="upgrading", version="1")
async def upgrading_v1(n: int) -> str:
    await perdure.wait_for_signal("go")
    raise ContinueAsNew(n + 1)


@workflow(name="upgrading", version="2")
async def upgrading_v2(n: int, label: str = "v2") -> str:
    return f"{label} got {n}"


async def test_the_next_incarnation_runs_the_default_version(make_engine: Any) -> None:
    old = await make_engine(upgrading_v1, park_after=0.1)
    handle = await old.start(upgrading_v1, 1, id="up-1")
    await wait_for_status(handle, "waiting")
    await old.close()
    both = await make_engine(upgrading_v1, upgrading_v2)
    handle = both.handle("up-1")
    await handle.signal("go")
    assert await handle.result(timeout=10) == "v2 got 2"
    info = await handle.status()
    assert (info.version, info.incarnation) == ("2", 1)
    [first] = await handle.incarnations()
    assert first.version == "1"


async def test_arguments_the_default_version_cannot_take_block_the_run(
        make_engine: Any) -> None:
    @workflow(name="upgrading", version="4", default=True)
    async def upgrading_v4(label: str) -> str:
        return label

    engine = await make_engine(upgrading_v1, upgrading_v4)
    handle = await engine.start(upgrading_v1, 1, id="up-2")
    await handle.signal("go")
    with pytest.raises(RunBlocked, match="cannot continue as new onto workflow 'upgrading' "
                                         "version '4'"):
        await handle.result(timeout=10)
    info = await handle.status()
    assert (info.version, info.incarnation) == ("1", 0)  # nothing was written


OUTAGE = {"on": True}


@step(max_attempts=1)
async def flaky() -> None:
    if OUTAGE["on"]:
        raise RuntimeError("outage")


@workflow
async def kid(tag: str) -> str:
    return tag


@workflow
async def tolerant_parent() -> str:
    try:
        await flaky()
        tag = "fixed"
    except perdure.StepFailed:
        tag = "broken"
    child = await perdure.start_child(kid, tag)
    result = await child.result()
    if result == "broken":
        raise RuntimeError("the child saw the outage")
    return result


async def test_a_resumed_generation_starts_its_own_children(make_engine: Any) -> None:
    # The child's default id is the parent's id and seq: a later generation (a resume after a
    # failure here, a continue-as-new above) starts a child at the same seq again, and must
    # not find the old child (and its old result) under that id.
    OUTAGE["on"] = True
    engine = await make_engine(tolerant_parent, kid)
    handle = await engine.start(tolerant_parent, id="tp")
    with pytest.raises(WorkflowFailed, match="the child saw the outage"):
        await handle.result(timeout=10)
    OUTAGE["on"] = False
    await engine.resume("tp")
    assert await handle.result(timeout=10) == "fixed"
    assert sorted(r.id for r in await engine.list_runs(workflow="kid")) == ["tp/1", "tp/1:g1"]


async def test_runs_show_tells_the_incarnation(make_engine: Any, db_url: str,
                                               capsys: Any) -> None:
    engine = await make_engine(counter)
    await (await engine.start(counter, 5, id="shown")).result(timeout=10)
    assert await asyncio.to_thread(main, ["runs", "show", "shown", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "continued as new 1 time(s): this is incarnation 1" in out
