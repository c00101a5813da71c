"""Drain with a sync step that outlasts the grace period: the run is handed back and the
process exits when the grace period ends, not when the step's thread does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from perdure import Engine, RunStatus, Workflow
from tests.crash.app_shutdown import WORKFLOWS
from tests.crash.harness import Cluster

pytestmark = pytest.mark.crash

GRACE = 1.0
BOUND = 4.0  # draining, handing back and closing the database, on a busy machine


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_shutdown", "WORKFLOWS"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return WORKFLOWS


async def test_the_process_exits_at_the_end_of_the_grace_period(cluster: Cluster,
                                                                 client: Engine) -> None:
    worker = cluster.start("w", grace=GRACE)
    await worker.ready()
    handle = await client.start("long_sync", 30.0, id="slow")
    await cluster.wait_events(lambda seen: any(e["event"] == "started" for e in seen),
                              what="the sync step started")
    terminated = time.monotonic()
    worker.proc.terminate()
    code = await asyncio.to_thread(worker.proc.wait, GRACE + 20)
    took = time.monotonic() - terminated
    assert code == 0, worker.tail()
    assert took < GRACE + BOUND, f"exited {took:.1f} s after SIGTERM with a {GRACE} s grace"
    assert worker.proc.stdout is not None
    out = worker.proc.stdout.read().decode()
    assert "grace period over: exiting with 1 step thread(s) still running" in out
    # Handed back, not left leased: another worker may take it at once.
    assert (await handle.status()).status is RunStatus.PENDING
