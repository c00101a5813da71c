"""Fork: a new run with the same arguments whose journal before seq N is copied, so earlier
steps are not executed again, and everything from N runs again under the fork's own keys."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import perdure
from perdure import (
    InvalidConfiguration,
    RunNotFound,
    RunStatus,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.cli.main import main
from perdure.testing import wait_for_status

#: the external world: (what, idempotency key)
effects: list[tuple[str, str]] = []
BROKEN = {"publish": True}


@pytest.fixture(autouse=True)
def _reset() -> None:
    effects.clear()
    BROKEN["publish"] = True


@step
async def charge(cents: int) -> str:
    effects.append(("charge", perdure.step_key()))
    return f"paid {cents}"


@step
async def summarise(text: str) -> str:
    effects.append(("llm", perdure.step_key()))  # expensive: tokens spent
    return text.upper()


@step(max_attempts=1)
async def publish(summary: str) -> str:
    effects.append(("publish", perdure.step_key()))
    if BROKEN["publish"]:
        raise RuntimeError("publisher down")
    return f"published {summary}"


@workflow
async def article(text: str, cents: int) -> str:
    await charge(cents)
    summary = await summarise(text)
    return await publish(summary)


async def test_a_fork_reuses_the_steps_before_the_fork_point(make_engine: Any) -> None:
    engine = await make_engine(article)
    original = await engine.start(article, "hello", 500, id="orig")
    with pytest.raises(WorkflowFailed, match="publisher down"):
        await original.result(timeout=10)
    BROKEN["publish"] = False  # the fix
    effects.clear()

    fork = await engine.fork("orig", from_seq=2, id="orig-fork")
    assert await fork.result(timeout=10) == "published HELLO"
    # Neither the charge nor the summary ran again; the publish ran under the fork's key.
    assert effects == [("publish", "orig-fork:2")]
    info = await fork.status()
    assert (info.forked_from, info.forked_seq, info.workflow, info.version) == (
        "orig", 2, "article", "1")
    before = await original.journal()
    after = await fork.journal()
    assert [(e.seq, e.name, e.output) for e in after[:2]] == [
        (e.seq, e.name, e.output) for e in before[:2]]
    assert (await original.status()).status is RunStatus.FAILED  # the original is untouched


async def test_a_fork_from_zero_runs_everything_again(make_engine: Any) -> None:
    BROKEN["publish"] = False
    engine = await make_engine(article)
    original = await engine.start(article, "x", 1, id="o2")
    await original.result(timeout=10)
    effects.clear()
    again = await engine.fork("o2", from_seq=0)
    assert await again.result(timeout=10) == "published X"
    assert [key for _, key in effects] == [f"{again.id}:0", f"{again.id}:1", f"{again.id}:2"]


async def test_a_fork_from_the_end_of_a_finished_run_executes_nothing(
        make_engine: Any) -> None:
    BROKEN["publish"] = False
    engine = await make_engine(article)
    await (await engine.start(article, "y", 2, id="o3")).result(timeout=10)
    effects.clear()
    copy = await engine.fork("o3", from_seq=3, id="o3-copy")
    assert await copy.result(timeout=10) == "published Y"
    assert effects == []


async def test_bad_input(make_engine: Any) -> None:
    engine = await make_engine(article)
    original = await engine.start(article, "z", 3, id="o4")
    with pytest.raises(WorkflowFailed):
        await original.result(timeout=10)
    with pytest.raises(RunNotFound):
        await engine.fork("missing", from_seq=0)
    for seq in (-1, 1.5, True, "2"):
        with pytest.raises(InvalidConfiguration, match="from_seq"):
            await engine.fork("o4", from_seq=seq)
    with pytest.raises(InvalidConfiguration, match="its journal ends at seq 2"):
        await engine.fork("o4", from_seq=4)
    # The journal is charge, summarise, publish (failed); no compensation: 3 is its end.
    first = await engine.fork("o4", from_seq=3, id="o4-fork")
    again = await engine.fork("o4", from_seq=3, id="o4-fork")  # the same fork: idempotent
    assert first.id == again.id
    with pytest.raises(InvalidConfiguration, match="already used by another run"):
        await engine.fork("o4", from_seq=1, id="o4-fork")
    with pytest.raises(InvalidConfiguration, match="already used by another run"):
        await engine.fork("o4", from_seq=1, id="o4")
    assert len(await engine.list_runs()) == 2  # nothing else was created


async def refund(cents: int) -> None:
    effects.append(("refund", perdure.step_key()))


@step(compensate=refund)
async def pay(cents: int) -> str:
    return "paid"


@workflow
async def saga(cents: int) -> str:
    await pay(cents)
    return await publish("s")


async def test_a_fork_cannot_start_past_a_rollback(make_engine: Any) -> None:
    engine = await make_engine(saga)
    handle = await engine.start(saga, 5, id="s1")
    with pytest.raises(WorkflowFailed):
        await handle.result(timeout=10)
    kinds = [(e.seq, e.kind) for e in await handle.journal()]
    assert kinds == [(0, "step"), (1, "step"), (2, "compensation")]
    with pytest.raises(InvalidConfiguration, match="began to roll back at seq 2"):
        await engine.fork("s1", from_seq=3)
    BROKEN["publish"] = False
    fork = await engine.fork("s1", from_seq=1)
    assert await fork.result(timeout=10) == "published s"


async def test_the_cli_forks_and_shows_the_link(make_engine: Any, db_url: str,
                                                capsys: Any) -> None:
    engine = await make_engine(article)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(article, "c", 1, id="cli-orig")).result(timeout=10)
    BROKEN["publish"] = False
    argv = ["runs", "fork", "cli-orig", "--from", "2", "--new-id", "cli-fork", "--db", db_url]
    assert await asyncio.to_thread(main, argv) == 0
    assert "run cli-fork forked from cli-orig at seq 2" in capsys.readouterr().out
    await wait_for_status(engine.handle("cli-fork"), "completed")
    assert await asyncio.to_thread(main, ["runs", "show", "cli-fork", "--db", db_url]) == 0
    assert re.search(r"^forked\s+from cli-orig at seq 2", capsys.readouterr().out, re.MULTILINE)
    argv[4] = "9"
    assert await asyncio.to_thread(main, argv) == 2
    assert "InvalidConfiguration" in capsys.readouterr().err
