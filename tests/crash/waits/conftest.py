"""The wait crash tests drive ``tests.crash.app_waits`` (target ``PARK`` or ``HOLD``: an
Engine with that ``park_after``)."""

from __future__ import annotations

from typing import Any

import pytest

from perdure import Workflow
from tests.crash.app_waits import WAIT_WORKFLOWS


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_waits", "PARK"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return WAIT_WORKFLOWS
