"""The schedule crash tests drive ``tests.crash.app_schedules``, with the worker processes on
a SQLite file or on a PostgreSQL database (the talk tests' ``cluster``), so every test runs on
both backends."""

from __future__ import annotations

from typing import Any

import pytest

from perdure import Workflow
from tests.crash.app_schedules import SCHEDULE_WORKFLOWS
from tests.crash.talk.conftest import cluster

__all__ = ["cluster"]


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_schedules", "SCHEDULE_WORKFLOWS"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return SCHEDULE_WORKFLOWS
