"""The step options of the durable units an agent runs: per role and per tool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from perdure.errors import InvalidConfiguration
from perdure.retry import RetryPolicy

__all__ = ["StepOptions", "checked"]


class StepOptions(TypedDict, total=False):
    """Options of the Perdure step that runs one model request or one tool call.

    ``attempts`` overrides ``retry.max_attempts``; ``timeout`` bounds each attempt (seconds);
    ``compensate`` (tools only) is called with the tool's arguments as keywords, plus
    ``result=`` (the tool's return value) when it accepts it, newest first, when the workflow
    fails or is cancelled after the tool ran: a saga over the agent's side effects.
    """

    attempts: int
    timeout: float
    retry: RetryPolicy
    compensate: Callable[..., Any]


_KEYS = frozenset(StepOptions.__annotations__)


def checked(options: object, what: str) -> StepOptions:
    """``options`` as :class:`StepOptions`, or ``InvalidConfiguration`` naming ``what``."""
    if not isinstance(options, dict):
        raise InvalidConfiguration(f"the step options of {what} must be a dict (StepOptions), "
                                   f"not {options!r}")
    unknown = sorted(set(options) - _KEYS)
    if unknown:
        raise InvalidConfiguration(f"unknown step options {unknown} for {what}; known: "
                                   f"{sorted(_KEYS)}")
    attempts = options.get("attempts")
    if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool)
                                 or attempts < 1):
        raise InvalidConfiguration(f"attempts of {what} must be an int >= 1, not {attempts!r}")
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidConfiguration(f"retry of {what} must be a RetryPolicy, not {retry!r}")
    compensate = options.get("compensate")
    if compensate is not None and not callable(compensate):
        raise InvalidConfiguration(f"compensate of {what} must be callable, not {compensate!r}")
    return options  # type: ignore[return-value]
