"""The talk crash tests drive ``tests.crash.app_talk`` (target ``PARK`` or ``HOLD``: an Engine
with that ``park_after``), with the worker processes on a SQLite file or on a PostgreSQL
database (a clone of the session server's template), so every test runs on both backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure import Workflow
from tests.crash.app_talk import TALK_WORKFLOWS
from tests.crash.harness import Cluster, cluster_on


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_talk", "PARK"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return TALK_WORKFLOWS


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path,
            crash_app: tuple[str, str]) -> Iterator[Cluster]:
    """Worker processes on one database; every one is killed and reaped at the end."""
    yield from cluster_on(request.param, request, tmp_path / "cluster", crash_app)


async def rows(cluster: Cluster, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` placeholders) read straight from the cluster's database."""
    if cluster.url.startswith("sqlite"):
        conn = sqlite3.connect(cluster.db)
        try:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()
    import asyncpg

    parts = sql.split("?")
    numbered = "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "")
                       for i, p in enumerate(parts))
    pconn = await asyncpg.connect(cluster.url)
    try:
        return [tuple(r) for r in await pconn.fetch(numbered, *args)]
    finally:
        await pconn.close()
