"""The workflow of the outbox crash test, run by real worker processes.

Started as ``python -m perdure worker tests.crash.app_outbox:ENGINE --db ...``. Every process
delivers through a :class:`~perdure.WebhookSink` to the test's HTTP server
(``$OUTBOX_TEST_URL``), tagging its requests with its pid (``X-Test-Pid``) so the test can tell
which publisher sent what.
"""

from __future__ import annotations

import os

import perdure
from perdure import Engine, RetryPolicy, WebhookSink, step, workflow

__all__ = ["ENGINE", "SECRET", "WORKFLOWS", "announce", "expected_order"]

SECRET = "crash-test-secret"
URL = os.environ.get("OUTBOX_TEST_URL", "http://127.0.0.1:9/unused")


@step
async def tick(run: str, i: int) -> int:
    return i


@workflow(name="announce")
async def announce(run: str, n: int) -> int:
    """``n`` events with the run as their key, in order, and a few without a key."""
    for i in range(n):
        await tick(run, i)
        await perdure.emit("tick", {"run": run, "i": i}, key=run)
        if i % 3 == 0:
            await perdure.emit("free", {"run": run, "i": i})
    return n


def expected_order(n: int) -> list[int]:
    """The payload ``i`` of a run's keyed events, in emit order."""
    return list(range(n))


WORKFLOWS = [announce]

ENGINE = Engine(
    "sqlite:///unused.db", workflows=WORKFLOWS,
    outbox=WebhookSink(URL, secret=SECRET, timeout=10, headers={"X-Test-Pid": str(os.getpid())}),
    outbox_retry=RetryPolicy(max_attempts=50, initial_delay=0.02, max_delay=0.2, jitter=0.5))
