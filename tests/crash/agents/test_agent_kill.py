"""A durable Pydantic AI agent across a SIGKILL of its worker, on SQLite and PostgreSQL.

The ledger counts every real model call and tool call (the model and the tools write it, in the
worker processes): a model call that was journaled before the kill is never paid for again, a
tool call cut off by the kill runs again with the same ``perdure.step_key()``, an approved tool
runs once even when the worker that parked the run is gone, and a reader of the agent's event
stream sees every event once, in order.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, RunStatus
from perdure.testing import wait_for_status
from tests.crash.app_agents import AGENT_WORKFLOWS
from tests.crash.harness import Cluster
from tests.crash.waits.helpers import hung_in

# Each worker process imports Pydantic AI and the OpenAI Agents SDK (seconds on a busy machine).
pytestmark = [pytest.mark.crash, pytest.mark.timeout(120)]

FINAL = "done: booked Rome"


async def collect(items: Any) -> list[Any]:
    return [item async for item in items]


def calls(cluster: Cluster, run_id: str, name: str) -> list[tuple[str, int]]:
    """The real calls of ``name`` (model, research, book) for the run: (step key, pid)."""
    return [(e["key"], e["pid"]) for e in cluster.ledger()
            if e["run"] == run_id and e["name"] == name]


async def reference_events(directory: Path) -> list[str]:
    """The event kinds of a crash-free run, in this process."""
    directory.mkdir()
    saved = os.environ.get("PERDURE_CRASH_DIR")
    os.environ["PERDURE_CRASH_DIR"] = str(directory)
    try:
        async with Engine(f"sqlite:///{directory / 'perdure.db'}", workflows=AGENT_WORKFLOWS,
                          shutdown_grace=0.5) as engine:
            handle = await engine.start("trip", "plan", id="reference")
            await handle.signal("approvals", True)
            assert str(await handle.result(timeout=20)).startswith(FINAL)
            return [e["event_kind"] async for e in handle.read_stream("events")]
    finally:
        if saved is None:
            os.environ.pop("PERDURE_CRASH_DIR", None)
        else:
            os.environ["PERDURE_CRASH_DIR"] = saved


async def test_kill_after_the_second_model_call_repeats_no_completed_model_call(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    expected_kinds = await reference_events(tmp_path / "reference")
    run_id = "trip-kill"
    handle = await client.start("trip", "plan", id=run_id)
    reader = asyncio.create_task(collect(handle.read_stream("events")))
    # Worker a: model call 1, research(Paris), model call 2 -- then it hangs in research(Rome)
    # after its side effect (its journal write never happens) and is killed there.
    a = cluster.start("a", hang_after=3)
    [event] = await cluster.wait_events(hung_in("research"), what="hang in research(Rome)",
                                         timeout=60)
    assert event["run"] == run_id
    assert len(calls(cluster, run_id, "model")) == 2
    a.kill()

    b = cluster.start("b")
    await handle.signal("approvals", True)  # buffered until the run waits for it
    result = await handle.result(timeout=30)
    assert result.startswith(FINAL)
    assert (await handle.status()).status is RunStatus.COMPLETED

    # Four model calls in all, each made once: the two a made are not repeated by b.
    models = calls(cluster, run_id, "model")
    assert len(models) == 4 and len({key for key, _ in models}) == 4
    assert [pid for _, pid in models] == [a.pid, a.pid, b.pid, b.pid]
    # research(Rome) was cut off by the kill: b ran it again, with the same step key.
    research = calls(cluster, run_id, "research")
    assert [pid for _, pid in research] == [a.pid, a.pid, b.pid]
    assert research[1][0] == research[2][0] == event["key"]
    assert len(calls(cluster, run_id, "book")) == 1

    # The live reader, tailing through the crash, saw every event once and in order.
    events = await asyncio.wait_for(reader, 20)
    assert [e["event_kind"] for e in events] == expected_kinds
    assert [e async for e in handle.read_stream("events")] == events
    positions = [int(e.output or "-1") for e in await handle.journal() if e.kind == "stream"]
    assert positions == list(range(len(events)))


async def test_an_approval_across_a_worker_restart_runs_the_tool_once(
        cluster: Cluster, client: Engine) -> None:
    run_id = "trip-approval"
    handle = await client.start("trip", "plan", id=run_id)
    a = cluster.start("a")
    # Parked on the approval as a row: no process holds the run.
    await wait_for_status(handle, RunStatus.WAITING, timeout=40)
    assert calls(cluster, run_id, "book") == []
    a.kill()

    b = cluster.start("b")
    await handle.signal("approvals", {"book": True})
    assert (await handle.result(timeout=30)).startswith(FINAL)
    [(_key, pid)] = calls(cluster, run_id, "book")
    assert pid == b.pid
    assert Counter(k for k, _ in calls(cluster, run_id, "model")).most_common(1)[0][1] == 1
    assert len(calls(cluster, run_id, "research")) == 2


async def test_an_openai_agent_killed_after_its_second_model_call_repeats_none(
        cluster: Cluster, client: Engine) -> None:
    run_id = "scout-kill"
    handle = await client.start("scout", "plan", id=run_id)
    # Worker a: model call 1, two concurrent weather calls, model call 2 -- then it hangs in
    # the booking after its side effect, and is killed there.
    a = cluster.start("a", hang_after=4)
    [event] = await cluster.wait_events(hung_in("oa_book"), what="hang in the booking",
                                         timeout=60)
    assert event["run"] == run_id
    a.kill()

    b = cluster.start("b")
    assert (await handle.result(timeout=30)).startswith("done: booked Rome")
    models = calls(cluster, run_id, "oa_model")
    assert len(models) == 3 and len({key for key, _ in models}) == 3
    assert [pid for _, pid in models] == [a.pid, a.pid, b.pid]
    assert len(calls(cluster, run_id, "oa_weather")) == 2
    booked = calls(cluster, run_id, "oa_book")
    assert [pid for _, pid in booked] == [a.pid, b.pid]
    assert booked[0][0] == booked[1][0] == event["key"]
    # The concurrent weather calls are journaled in the model's order, Paris before Rome.
    weather = [e.output for e in await handle.journal() if e.name.endswith("tool:weather")]
    assert [w is not None and ("Paris" in w, "Rome" in w) for w in weather] \
        == [(True, False), (False, True)]
