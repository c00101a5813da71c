"""The durable-agent crash tests drive ``tests.crash.app_agents:AGENTS`` (a Pydantic AI agent
whose model and tools record every real call), with the worker processes on a SQLite file or on
a PostgreSQL database, so every test runs on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from perdure import Workflow
from tests.crash.app_agents import AGENT_WORKFLOWS
from tests.crash.harness import Cluster, cluster_on


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_agents", "AGENTS"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return AGENT_WORKFLOWS


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path,
            crash_app: tuple[str, str]) -> Iterator[Cluster]:
    """Worker processes on one database; every one is killed and reaped at the end."""
    yield from cluster_on(request.param, request, tmp_path / "cluster", crash_app)
