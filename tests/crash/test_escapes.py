"""A step raising ``SystemExit`` in a real worker process is a failed attempt: the process
lives on and keeps driving runs."""

from __future__ import annotations

import pytest

from perdure import Engine, RunStatus
from tests.crash.app import ESCAPES
from tests.crash.harness import Cluster

pytestmark = pytest.mark.crash


async def test_system_exit_in_a_step_does_not_end_the_worker_process(cluster: Cluster) -> None:
    worker = cluster.start("a", target="ESCAPES")
    await worker.ready()
    async with Engine(cluster.url, workflows=ESCAPES, worker=False) as client:
        handle = await client.start("exits", "t", id="exits-1")
        assert await handle.result(timeout=20) == "handled SystemExit after 3 attempt(s)"
        assert (await handle.status()).status is RunStatus.COMPLETED
        assert worker.proc.poll() is None, worker.tail()  # still running
        # ... and still serving: the same process drives the next run.
        after = await client.start("pipeline", "t", 2, id="after-1")
        assert len(await after.result(timeout=20)) == 2
    assert worker.proc.poll() is None, worker.tail()
    effects = cluster.ledger()
    assert [(e["run"], e["name"]) for e in effects] == \
        [("exits-1", "exit_step")] * 3 + [("after-1", "s1"), ("after-1", "s2")]
    assert {e["pid"] for e in effects} == {worker.pid}
