"""Shared fixtures: engines on a temporary SQLite file, and an injectable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, VirtualClock


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for the test."""
    return f"sqlite:///{tmp_path / 'perdure.db'}"


@pytest.fixture
def clock() -> VirtualClock:
    """A clock that moves only when the test advances it."""
    return VirtualClock()


@pytest.fixture
async def make_engine(db_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Open engines on the test's database; all are closed (or aborted) at the end."""
    engines: list[Engine] = []

    async def make(*workflows: Any, url: str | None = None, **options: Any) -> Engine:
        options.setdefault("shutdown_grace", 0.5)
        engine = Engine(url or db_url, workflows=list(workflows), **options)
        await engine.open()
        engines.append(engine)
        return engine

    yield make
    for engine in reversed(engines):
        await engine.close()
