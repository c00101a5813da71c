"""Fixtures of the crash tests: a cluster of real worker processes and a client engine.

A sub-folder whose tests drive another app overrides ``crash_app`` and ``crash_workflows``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, Workflow
from tests.crash.app import WORKFLOWS
from tests.crash.harness import APP, Cluster


@pytest.fixture
def crash_app() -> tuple[str, str]:
    """The module the cluster's workers drive, and the attribute they take by default."""
    return APP, "WORKFLOWS"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    """The workflows the client engine knows."""
    return WORKFLOWS


@pytest.fixture
def cluster(tmp_path: Path, crash_app: tuple[str, str]) -> Iterator[Cluster]:
    """Worker processes on one SQLite file; every one is killed and reaped at the end."""
    app, target = crash_app
    c = Cluster(tmp_path / "cluster", app=app, target=target)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
async def client(cluster: Cluster, crash_workflows: list[Workflow[Any, Any]]
                 ) -> AsyncIterator[Engine]:
    """A client engine (starts, signals, cancels and inspects runs; drives none) on the
    cluster's database."""
    async with Engine(cluster.url, workflows=crash_workflows, worker=False) as engine:
        yield engine
