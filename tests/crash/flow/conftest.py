"""The flow-control process tests drive ``tests.crash.app_flow`` with worker processes on a
SQLite file (``synchronous=normal``: thousands of runs) or on a PostgreSQL database (a clone of
the session server's template), so every test runs on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure import Workflow
from tests.crash.app_flow import bounded, fair, free, gpu_job, metered
from tests.crash.harness import Cluster, cluster_on


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_flow", "BOUNDED"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return [bounded, fair, metered, free, gpu_job]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path,
            crash_app: tuple[str, str]) -> Iterator[Cluster]:
    """Worker processes on one database; every one is killed and reaped at the end."""
    yield from cluster_on(request.param, request, tmp_path / "cluster", crash_app,
                          sqlite_query="?synchronous=normal")


def observed(cluster: Cluster, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` from the table the workers write from inside each run."""
    conn = sqlite3.connect(cluster.dir / "observe.db", timeout=30)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


class Sampler:
    """Samples ``sql`` (one number) on the cluster's database continuously, from a thread of
    its own (SQLite) or a connection of its own (PostgreSQL), until stopped."""

    def __init__(self, cluster: Cluster, sql: str) -> None:
        self.cluster, self.sql = cluster, sql
        self.values: list[int] = []
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    async def __aenter__(self) -> Sampler:
        if self.cluster.url.startswith("sqlite"):
            self._thread = threading.Thread(target=self._sqlite, daemon=True)
            self._thread.start()
        else:
            self._task = asyncio.create_task(self._postgres())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._task is not None:
            await self._task

    def _sqlite(self) -> None:
        conn = sqlite3.connect(self.cluster.db, timeout=30)
        try:
            while not self._stop.is_set():
                self.values.append(int(conn.execute(self.sql).fetchone()[0]))
                self._stop.wait(0.002)
        finally:
            conn.close()

    async def _postgres(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.cluster.url)
        try:
            while not self._stop.is_set():
                self.values.append(int(await conn.fetchval(self.sql)))
                await asyncio.sleep(0.002)
        finally:
            await conn.close()
