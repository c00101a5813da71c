"""Continue-as-new across a SIGKILL of the worker: in a step of an incarnation, in the first
step after a continue-as-new, and in the middle of the continue-as-new itself. The run always
finishes with its crash-free result; each iteration's side effect happens once, except the one
a kill cut off after its effect (at-least-once, with the same key); the history holds each
ended incarnation exactly once."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from typing import Any

import pytest

from perdure import Engine, RunStatus, Workflow
from tests.crash.app_long import LONG, tick_key
from tests.crash.harness import Cluster

pytestmark = pytest.mark.crash

TOTAL, EVERY = 7, 3


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_long", "LONG"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return LONG


def _hung(events: list[dict[str, object]]) -> bool:
    return any(e["event"] == "hung" for e in events)


async def _check_finished(client: Engine, cluster: Cluster, run_id: str,
                          twice: set[int]) -> None:
    handle = client.handle(run_id)
    assert await handle.result(timeout=30) == TOTAL
    info = await handle.status()
    assert (info.status, info.incarnation) == (RunStatus.COMPLETED, 2)
    older = await handle.incarnations()
    assert [[e.name for e in i.journal] for i in older] == [["tick"] * EVERY] * 2
    assert [(e.seq, e.name) for e in await handle.journal()] == [(0, "tick")]
    keys = Counter(e["key"] for e in cluster.ledger())
    assert keys == {tick_key(run_id, i, EVERY): 2 if i in twice else 1 for i in range(TOTAL)}


@pytest.mark.parametrize("effects", [3, 4], ids=["first-step-after", "mid-incarnation"])
async def test_kill_in_a_step_of_a_later_incarnation(
        cluster: Cluster, client: Engine, effects: int) -> None:
    run_id = f"loop-{effects}"
    await client.start("looping", TOTAL, 0, EVERY, id=run_id)
    a = cluster.start("a", hang_after=effects)  # the next tick hangs after its side effect
    [event] = await cluster.wait_events(_hung, what="a tick hung after its effect")
    assert event["key"] == tick_key(run_id, effects, EVERY)
    assert (await client.status(run_id)).incarnation == 1
    a.kill()
    cluster.start("b")
    await _check_finished(client, cluster, run_id, twice={effects})


async def test_kill_while_continuing_as_new(cluster: Cluster, client: Engine) -> None:
    run_id = "loop-can"
    await client.start("looping", TOTAL, 0, EVERY, id=run_id)
    a = cluster.start("a", hang=[f"continue@{EVERY}"], stop=True)
    await cluster.wait_events(_hung, what="the workflow about to continue as new")
    await a.wait_state("T")
    # The continue-as-new cannot commit while we hold the database's write lock: wherever the
    # kill lands from here on (in the workflow, in the runner, inside the continue's
    # transaction), the incarnation has not ended.
    lock = sqlite3.connect(cluster.db, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        a.proc.send_signal(signal.SIGCONT)
        time.sleep(0.2)  # let it reach the transaction (not a wait for a state: see above)
        a.kill()
        lock.execute("ROLLBACK")
    finally:
        lock.close()
    info = await client.status(run_id)
    assert (info.status, info.incarnation) == (RunStatus.RUNNING, 0)  # its owner is dead
    assert [e.name for e in await client.journal(run_id)] == ["tick"] * EVERY
    cluster.start("b")
    # The replay of incarnation 0 executes nothing and continues as new, once.
    await _check_finished(client, cluster, run_id, twice=set())
