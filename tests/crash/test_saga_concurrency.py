"""A saga whose failing step runs concurrently with another step (``asyncio.gather``).

The workflow fails as soon as one gathered step fails, while its sibling is still executing.
The sibling then completes its side effect, but the run has already compensated and finished:
the side effect is never compensated, and the sibling's journal write is fenced off, so no
replay can find it either. Whether it is compensated also depends on timing (a crash after the
sibling's journal write, then a replay, would compensate it), so a crashed and a crash-free
run end differently.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perdure import NonRetryable, RetryPolicy, WorkflowFailed, step, workflow
from perdure.testing import wait_for_journal

effects: list[str] = []
release = asyncio.Event()


async def unbook(item: str) -> None:
    effects.append(f"unbook {item}")


@step(compensate=unbook)
async def book(item: str) -> str:
    await release.wait()  # still executing when its sibling fails
    effects.append(f"book {item}")
    return item


@step(retry=RetryPolicy(max_attempts=1))
async def refuse(item: str) -> None:
    raise NonRetryable(f"{item} refused")


@workflow(name="gathered_saga")
async def gathered_saga() -> None:
    await asyncio.gather(book("room"), refuse("car"))


async def test_step_in_flight_when_the_run_fails_is_compensated_or_never_done(
        make_engine: Any) -> None:
    global release
    effects.clear()
    release = asyncio.Event()
    engine = await make_engine(gathered_saga)
    handle = await engine.start(gathered_saga)
    await wait_for_journal(handle, lambda j: any(e.name == "refuse" and e.status == "failed"
                                                 for e in j))
    release.set()  # book("room") carries on (or is gone, if the engine cancelled it)
    with pytest.raises(WorkflowFailed):
        await handle.result(timeout=10)
    # The released step resumed long before the run's outcome could be read; if the engine
    # cancelled it instead, it had no side effect and there is nothing to undo.
    if "book room" in effects:
        assert effects == ["book room", "unbook room"]
        assert [(e.kind, e.name) for e in await handle.journal()] == [
            ("step", "book"), ("step", "refuse"), ("compensation", "book")]
