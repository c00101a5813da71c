"""Where the current coroutine is: inside a run, inside one attempt of a step, or neither.

The lowest module of the in-workflow layer. The run's context is held here as the small
:class:`StepCaller` protocol, so that ``Step.__call__`` (in ``definitions``) can dispatch a call
without importing the context, which itself needs the definitions' types.
"""

from __future__ import annotations

from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from perdure.errors import NotInWorkflow

__all__ = ["StepCaller", "StepScope", "active_run", "active_step", "run_or_raise"]


@dataclass(slots=True)
class StepScope:
    """Set while a step attempt runs: what ``step_key()`` and nested calls see."""

    run_id: str
    seq: int
    attempt: int
    generation: int = 0


class StepCaller(Protocol):
    """What a step call inside a workflow is dispatched to (the run's context)."""

    def call_step(self, step: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> Coroutine[Any, Any, Any]:
        """Number the call now and return the awaitable of its journaled outcome."""
        ...


#: the run being driven by this task (set by the engine's runner)
active_run: ContextVar[StepCaller | None] = ContextVar("perdure_run", default=None)
#: the step attempt executing in this task, if any
active_step: ContextVar[StepScope | None] = ContextVar("perdure_step", default=None)


def run_or_raise(what: str) -> StepCaller:
    """The running workflow's context, or a clear error naming ``what`` was misused."""
    run = active_run.get()
    if run is None:
        raise NotInWorkflow(
            f"{what} can only be called inside a running workflow; start one with "
            "engine.start(...) and call it from the workflow's code")
    return run
