"""Where the SDK's calls run, and the steps they become."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from perdure.retry import RetryPolicy
from perdure.workflow.definitions import Step
from perdure.workflow.scope import active_run, active_step

__all__ = ["in_workflow", "step_for"]


def in_workflow() -> bool:
    """Inside a running workflow's own code (not inside one of its steps)."""
    return active_run.get() is not None and active_step.get() is None


async def _unit(call: Callable[[], Awaitable[Any]]) -> Any:
    return await call()


@cache
def step_for(name: str, attempts: int | None = None) -> Step[Any, Any]:
    """The step named ``name`` that runs the zero-argument call it is given (made once)."""
    policy = RetryPolicy() if attempts is None else RetryPolicy(max_attempts=attempts)
    return Step(_unit, name=name, retry=policy, timeout=None, compensate=None)
