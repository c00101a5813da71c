"""Patching: one deployment carries the old and the new branch; a run recorded before the patch
replays the old one, a run that passed the patch replays the new one, and a mismatch blocks.

Each "deploy" below is another function registered under the same name and version, on a new
engine over the same database, as after a real redeploy of the same workflow version.
"""

from __future__ import annotations

from typing import Any

import pytest

import perdure
from perdure import (
    InvalidConfiguration,
    NotInWorkflow,
    RunBlocked,
    RunStatus,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.testing import wait_for_status

done: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    done.clear()


def _named(name: str) -> Any:
    async def act() -> str:
        done.append(name)
        return name

    return step(name=name)(act)


reserve, charge, ship, fraud_check = (_named(n) for n in ("reserve", "charge", "ship",
                                                         "fraud-check"))
a, b, z = (_named(n) for n in "abz")


@workflow(name="order")
async def order_before(o: str) -> list[str]:
    out = [await reserve(), await charge()]
    await perdure.wait_for_signal("go")
    return [*out, await ship()]


@workflow(name="order")
async def order_patched(o: str) -> list[str]:
    out = [await reserve()]
    if perdure.patched("fraud-check"):
        out.append(await fraud_check())
    if perdure.patched("fraud-check"):  # the same id again: the same answer, no seq taken
        out.append("checked")
    out.append(await charge())
    await perdure.wait_for_signal("go")
    return [*out, await ship()]


@workflow(name="order")
async def order_deprecated(o: str) -> list[str]:
    out = [await reserve()]
    perdure.deprecate_patch("fraud-check")
    out += [await fraud_check(), "checked", await charge()]
    await perdure.wait_for_signal("go")
    return [*out, await ship()]


async def _park(make_engine: Any, code: Any, run_id: str) -> None:
    engine = await make_engine(code, park_after=0.1)
    await wait_for_status(await engine.start(code, run_id, id=run_id), "waiting")
    await engine.close()


async def _finish(make_engine: Any, code: Any, run_id: str) -> list[str]:
    engine = await make_engine(code)
    handle = engine.handle(run_id)
    await handle.signal("go")
    result: list[str] = await handle.result(timeout=10)
    return result


async def test_a_run_recorded_before_the_patch_takes_the_old_branch(make_engine: Any) -> None:
    await _park(make_engine, order_before, "old")
    done.clear()
    assert await _finish(make_engine, order_patched, "old") == ["reserve", "charge", "ship"]
    assert done == ["ship"]  # replayed: nothing ran twice, the fraud check never ran
    journal = await (await make_engine(order_patched, worker=False)).journal("old")
    assert [(e.seq, e.kind, e.name) for e in journal] == [
        (0, "step", "reserve"), (1, "step", "charge"), (2, "signal", "go"), (3, "step", "ship")]


async def test_new_runs_journal_a_marker_and_replay_the_new_branch(make_engine: Any) -> None:
    await _park(make_engine, order_patched, "new")
    assert done == ["reserve", "fraud-check", "charge"]
    done.clear()
    assert await _finish(make_engine, order_patched, "new") == [
        "reserve", "fraud-check", "checked", "charge", "ship"]
    assert done == ["ship"]
    journal = await (await make_engine(order_patched, worker=False)).journal("new")
    assert [(e.seq, e.kind, e.name) for e in journal] == [
        (0, "step", "reserve"), (1, "patch", "fraud-check"), (2, "step", "fraud-check"),
        (3, "step", "charge"), (4, "signal", "go"), (5, "step", "ship")]


async def test_deprecate_patch_consumes_the_marker_and_writes_none(make_engine: Any) -> None:
    await _park(make_engine, order_patched, "marked")
    done.clear()
    assert await _finish(make_engine, order_deprecated, "marked") == [
        "reserve", "fraud-check", "checked", "charge", "ship"]
    assert done == ["ship"]
    fresh = await make_engine(order_deprecated)
    handle = await fresh.start(order_deprecated, "fresh", id="fresh")
    await handle.signal("go")
    await handle.result(timeout=10)
    assert [e.kind for e in await handle.journal()] == ["step", "step", "step", "signal", "step"]


async def test_an_old_run_meeting_a_deprecated_patch_blocks_and_keeps_its_journal(
        make_engine: Any) -> None:
    await _park(make_engine, order_before, "too-old")
    engine = await make_engine(order_deprecated)
    before = await engine.journal("too-old")
    handle = engine.handle("too-old")
    await handle.signal("go")
    with pytest.raises(RunBlocked, match="non-determinism at seq 1: the journal recorded step "
                                         "'charge' but the code now calls step 'fraud-check'"):
        await handle.result(timeout=10)
    assert await engine.journal("too-old") == before  # nothing written, nothing lost
    # The right code, deployed again and resumed, finishes it (the signal is still buffered).
    await engine.close()
    fixed = await make_engine(order_patched)
    await fixed.resume("too-old")
    assert await fixed.handle("too-old").result(timeout=10) == ["reserve", "charge", "ship"]


@workflow(name="moved")
async def moved_before(o: str) -> str:
    await a()
    if perdure.patched("p"):
        await b()
    await perdure.wait_for_signal("go")
    return "done"


@workflow(name="moved")
async def moved_after(o: str) -> str:
    if perdure.patched("p"):  # the same id, now for another change at another place
        await z()
    await a()
    await perdure.wait_for_signal("go")
    return "done"


async def test_a_patch_id_reused_elsewhere_blocks(make_engine: Any) -> None:
    await _park(make_engine, moved_before, "moved")
    engine = await make_engine(moved_after)
    handle = engine.handle("moved")
    await handle.signal("go")
    with pytest.raises(RunBlocked, match="asks for patch 'p' here, but the run recorded that "
                                         "patch at seq 1"):
        await handle.result(timeout=10)


@workflow
async def both_ways() -> None:
    if perdure.patched("x"):
        await a()
    perdure.deprecate_patch("x")


@workflow
async def bad_patch(value: Any) -> None:
    perdure.patched(value)


@step(max_attempts=1)
async def patch_in_step() -> bool:
    return perdure.patched("inside")


@workflow
async def patches_in_a_step() -> bool:
    return await patch_in_step()


async def test_bad_input(make_engine: Any) -> None:
    engine = await make_engine(both_ways, bad_patch, patches_in_a_step)
    with pytest.raises(RunBlocked, match="used by both patched"):
        await (await engine.start(both_ways)).result(timeout=10)
    for value in ("", 7, None, "x" * 256):
        handle = await engine.start(bad_patch, value)
        with pytest.raises(WorkflowFailed, match="a patch id must be a non-empty string"):
            await handle.result(timeout=10)
        assert await handle.journal() == []
    with pytest.raises(WorkflowFailed, match="NotInWorkflow"):
        await (await engine.start(patches_in_a_step)).result(timeout=10)
    with pytest.raises(NotInWorkflow):
        perdure.patched("outside")
    with pytest.raises(InvalidConfiguration):
        perdure.deprecate_patch("")


async def test_a_crash_right_after_the_marker_replays_the_new_branch(make_engine: Any) -> None:
    engine = await make_engine(order_patched, park_after=0.1)
    handle = await engine.start(order_patched, "c", id="crashy")
    await wait_for_status(handle, "waiting")
    await engine.abort()  # as a crash: the parked run is replayed from its journal
    assert await _finish(make_engine, order_patched, "crashy") == [
        "reserve", "fraud-check", "checked", "charge", "ship"]
    assert (await (await make_engine(worker=False)).status("crashy")).status \
        is RunStatus.COMPLETED
