"""The push tests drive ``tests.crash.app_push`` (target ``SLOW_POLL``: a 5 s poll)."""

from __future__ import annotations

from typing import Any

import pytest

from perdure import Workflow
from tests.crash.app_push import PUSH_WORKFLOWS


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_push", "SLOW_POLL"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return PUSH_WORKFLOWS
