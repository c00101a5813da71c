"""The workload of the serverless-host crash test, driven by ``perdure run-once`` processes.

Started as ``python -m perdure run-once tests.crash.hosts.app:ENGINE --db ... --max-seconds S``.
Every run does a step, maybe a durable timer, maybe a wait for a signal, and another step; the
result depends only on its argument and the signal's payload, so a run's result after any
number of killed invocations must equal the crash-free one.
"""

from __future__ import annotations

from typing import Any

import perdure
from perdure import Engine, step, workflow

__all__ = ["ENGINE", "expected", "hosted"]


@step
async def double(x: int) -> int:
    return x * 2


@workflow(name="hosted")
async def hosted(i: int) -> dict[str, Any]:
    a = await double(i)
    if i % 3 == 0:
        await perdure.sleep(0.2 + (i % 5) / 10)  # longer than park_after: the run parks
    sig = await perdure.wait_for_signal("go", timeout=600) if i % 4 == 0 else None
    b = await double(a)
    return {"i": i, "b": b, "sig": sig}


def expected(i: int) -> dict[str, Any]:
    """The crash-free result of run ``i`` (signalled with ``{"n": i}``)."""
    return {"i": i, "b": 4 * i, "sig": {"n": i} if i % 4 == 0 else None}


# Short leases, so a run held by a killed invocation on another host would lapse quickly (on
# this host, the next invocation sees the dead pid and frees it at once).
ENGINE = Engine(workflows=[hosted], worker=False, park_after=0.1, lease=2.0)
