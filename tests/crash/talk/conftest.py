"""The talk crash tests drive ``tests.crash.app_talk`` (target ``PARK`` or ``HOLD``: an Engine
with that ``park_after``)."""

from __future__ import annotations

from typing import Any

import pytest

from perdure import Workflow
from tests.crash.app_talk import TALK_WORKFLOWS


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_talk", "PARK"


@pytest.fixture
def crash_workflows() -> list[Workflow[Any, Any]]:
    return TALK_WORKFLOWS
