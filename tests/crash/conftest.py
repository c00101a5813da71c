"""Fixtures of the crash tests: a cluster of real worker processes and a client engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from perdure import Engine
from tests.crash.app import WORKFLOWS
from tests.crash.harness import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Worker processes on one SQLite file; every one is killed and reaped at the end."""
    c = Cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Engine]:
    """A client engine (starts and inspects runs, drives none) on the cluster's database."""
    async with Engine(cluster.url, workflows=WORKFLOWS, worker=False) as engine:
        yield engine
