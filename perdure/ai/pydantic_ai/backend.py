"""The operation backend: each durable operation Pydantic AI hands over runs as a Perdure step.

Pydantic AI's ``CallableOperationBackend`` owns naming, per-tool configuration and result
encoding; this backend only turns one named body into one Perdure step call, so the step's
journal entry (kind ``step``, the operation's name) is what a replay finds and checks. A body
that returned is journaled like any step result: the payload limit, the codec and blob offload
apply, so a large model response is offloaded rather than written as a 50 MB journal row.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic_ai.durable_exec import (
    CallableOperationBackend,
    DurableOperationId,
    DurableOperationNamer,
    RoleBasedOperationConfig,
    ToolsetCallToolId,
)

from perdure.ai.pydantic_ai.options import StepOptions
from perdure.errors import NonRetryable, SerializationError, StepFailed
from perdure.retry import RetryPolicy
from perdure.workflow.definitions import Step

__all__ = ["PerdureOperationBackend", "Unencodable"]


class Unencodable(NonRetryable):
    """Inside a step: the operation's result cannot be encoded (retrying cannot help)."""


_UNENCODABLE = f"{Unencodable.__module__}.{Unencodable.__qualname__}"
#: the journaled forms of a tool call that returned (the others are control flow: a retry
#: request, an approval, a deferral, a failure) -- only these are compensated
_RETURNED = ("tool_return", "tool_content_result")


@dataclass(frozen=True, slots=True)
class _Call:
    """The arguments of one step call: never journaled, used live (and by a compensation)."""

    body: Callable[[], Awaitable[object]]
    tool_args: dict[str, Any]
    compensate: Callable[..., Any] | None


async def _unit(call: _Call) -> Any:
    """The function of every operation step: run the body Pydantic AI handed over."""
    return await call.body()


async def _compensate(call: _Call, result: Any = None) -> None:
    """Undo one returned tool call with the user's ``compensate`` (see :class:`StepOptions`)."""
    if call.compensate is None or not isinstance(result, dict) or \
            result.get("kind") not in _RETURNED:
        return
    kwargs = dict(call.tool_args)
    try:
        if "result" in inspect.signature(call.compensate).parameters:
            kwargs["result"] = result.get("result")
    except (TypeError, ValueError):
        pass
    done = call.compensate(**kwargs)
    if inspect.isawaitable(done):
        await done


class PerdureOperationBackend(CallableOperationBackend[StepOptions]):
    """Runs each durable operation as one Perdure step named by the operation's persisted name."""

    def __init__(self, *, namer: DurableOperationNamer,
                 config: RoleBasedOperationConfig[StepOptions]) -> None:
        super().__init__(namer=namer, config=config)
        # One Step per (name, options): its codec is built once, not per call.
        self._steps: dict[tuple[str, int | None, float | None, object, object], Step[Any, Any]] = {}

    async def execute(self, *, operation_id: DurableOperationId, name: str,
                      body: Callable[[], Awaitable[object]], cache_key: tuple[object, ...],
                      config: StepOptions) -> object:
        options = config or StepOptions()
        tool_args: dict[str, Any] = {}
        what = f"step {name!r}"
        if isinstance(operation_id, ToolsetCallToolId) and len(cache_key) >= 2 \
                and isinstance(cache_key[1], dict):  # (tool name, tool args, ...)
            tool_args = cache_key[1]
            what = f"tool {cache_key[0]!r} (step {name!r})"
        compensate = options.get("compensate")
        call = _Call(body, tool_args, compensate)
        step = self._step(name, options)
        try:
            return await step(call)
        except StepFailed as exc:
            if exc.cause_type == _UNENCODABLE:
                raise SerializationError(f"the result of {what} cannot be journaled: "
                                         f"{exc.cause_message}") from None
            raise

    def _step(self, name: str, options: StepOptions) -> Step[Any, Any]:
        attempts = options.get("attempts")
        timeout = options.get("timeout")
        retry = options.get("retry")
        compensate = options.get("compensate")
        key = (name, attempts, timeout, retry, compensate)
        step = self._steps.get(key)
        if step is None:
            policy = retry or RetryPolicy()
            if attempts is not None:
                policy = RetryPolicy(attempts, policy.initial_delay, policy.multiplier,
                                     policy.max_delay, policy.jitter)
            step = Step(_unit, name=name, retry=policy, timeout=timeout,
                        compensate=_compensate if compensate is not None else None)
            self._steps[key] = step
        return step
