"""``engine.readiness()``: what ``/readyz`` serves, through an engine's life, on both backends.

(The database going away and coming back is ``tests/pg/test_health.py``, with a real server
halted and resumed.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perdure import Engine, Readiness
from tests.integration.test_lifecycle_logs import _gate, gated


@pytest.fixture(autouse=True)
def _gates() -> None:
    _gate.clear()


async def test_readiness_through_an_engines_life(db_url: str, make_engine: Any) -> None:
    engine = Engine(db_url, workflows=[gated], shutdown_grace=0.5)
    assert engine.readiness() == Readiness(False, "not open yet")
    await engine.open()
    try:
        assert engine.readiness() == Readiness(True, "claiming runs of gated")
        assert engine.readiness()  # truthy when ready
        handle = await engine.start(gated, "d")
        while "d" not in _gate:  # its step executes
            await asyncio.sleep(0.001)
        closing = asyncio.create_task(engine.close(grace=30))
        while engine.readiness():  # draining: no longer ready, while the run finishes
            await asyncio.sleep(0.001)
        assert engine.readiness() == Readiness(False, "draining: no new claims")
        _gate["d"].set()
        await closing
        assert engine.readiness() == Readiness(False, "closed")
    finally:
        await engine.close()
    client = await make_engine(gated, worker=False)
    assert client.readiness() == Readiness(True, "open (a client: it claims no runs)")
    assert await client.handle(handle.id).result(timeout=10) == "d"
