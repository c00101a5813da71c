"""Executing steps and compensations: attempts, back-off, and their journal entries.

One journal write per step outcome (completed or failed) and one per failed attempt that will
be retried, so the attempt count survives a crash. Nothing is written before an attempt: steps
are at-least-once, and a crash mid-attempt re-executes it on the next worker.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from perdure.errors import NonRetryable, PayloadTooLarge, SerializationError, StepFailed
from perdure.flow.definitions import Limit
from perdure.records import ErrorInfo, JournalEntry
from perdure.retry import RetryPolicy
from perdure.workflow.context import CompletedStep, RunContext
from perdure.workflow.definitions import Escaped, Step, contained
from perdure.workflow.limits import acquire, release
from perdure.workflow.scope import StepScope, active_step

__all__ = ["run_compensations", "run_step"]

_SERIALIZATION = f"{SerializationError.__module__}.{SerializationError.__qualname__}"
_TOO_LARGE = f"{PayloadTooLarge.__module__}.{PayloadTooLarge.__qualname__}"


class _Exhausted(Exception):
    """The attempts are used up (or the failure is not retryable)."""

    def __init__(self, error: ErrorInfo, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


async def run_step(ctx: RunContext, seq: int, step: Step[Any, Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
    """The outcome of step call number ``seq``: journaled, or executed now and journaled."""
    entry = ctx.recorded(seq, "step", step.name)
    if entry is not None:
        ctx.replay_cancel(entry)
    what = f"the result of step {step.name!r} (seq {seq})"
    if entry is not None and entry.status == "completed":
        text = await ctx.load_payload(entry.output, what)
        try:
            value = step.codec.decode_result(text or "null")
        except SerializationError as exc:
            ctx.halt(ctx.undecodable(f"the journaled result of step {step.name!r} at seq {seq}",
                                     exc))
        _remember(ctx, seq, step, args, kwargs, value)
        return value
    if entry is not None and entry.status == "failed":
        error = ErrorInfo.from_json(await ctx.load_payload(entry.error, f"the error of {what}"))
        raise _step_error(step, error, entry.attempts)

    async def attempt() -> str:
        value = await step.invoke(args, kwargs)
        try:
            text = step.codec.encode_result(value, limit=ctx.payloads.max_payload)
        except SerializationError as exc:
            # Retrying cannot make the result encodable: fail the step at once.
            raise _NotRetryable(exc) from exc
        outcome.append(value)
        return text

    outcome: list[Any] = []
    ctx.begin_op()
    try:
        output, attempts, started = await _attempts(ctx, seq, "step", step.name, attempt,
                                                    step.retry, entry, step.limits)
        output = await ctx.store_payload(output, what)
        finished = ctx.clock.time()
        await ctx.write(JournalEntry(seq, "step", step.name, "completed", attempts, output,
                                     started_at=started, finished_at=finished))
        _remember(ctx, seq, step, args, kwargs, outcome[-1])
        return outcome[-1]
    except _Exhausted as exc:
        raise _step_error(step, exc.error, exc.attempts) from None
    finally:
        ctx.end_op()


async def run_compensations(ctx: RunContext) -> list[str]:
    """Compensate every completed step with a ``compensate``, newest first; returns the names
    of the steps whose compensation failed.

    Each compensation is journaled (so a crash mid-rollback resumes it); one that exhausts its
    attempts is recorded as failed and the rest still run.
    """
    failed: list[str] = []
    for done in reversed(ctx.compensable):
        compensate = done.step.compensate
        assert compensate is not None
        seq = ctx.take_seq()
        entry = ctx.recorded(seq, "compensation", done.step.name)
        if entry is not None and entry.status in ("completed", "failed"):
            if entry.status == "failed":
                failed.append(done.step.name)
            continue
        policy = compensate.retry if isinstance(compensate, Step) else done.step.retry
        call = _compensation_call(compensate, done)
        marker = json.dumps({"compensated": done.seq})

        async def attempt(call: Callable[[], Awaitable[Any]] = call,
                          marker: str = marker) -> str:
            await call()
            return marker

        try:
            output, attempts, started = await _attempts(ctx, seq, "compensation",
                                                        done.step.name, attempt, policy, entry)
        except _Exhausted:
            failed.append(done.step.name)
            continue  # recorded as failed by _attempts; the saga goes on
        await ctx.write(JournalEntry(seq, "compensation", done.step.name, "completed",
                                     attempts, output, started_at=started,
                                     finished_at=ctx.clock.time()))
    return failed


class _NotRetryable(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _attempts(ctx: RunContext, seq: int, kind: str, name: str,
                    attempt: Callable[[], Awaitable[str]], policy: RetryPolicy,
                    entry: JournalEntry | None,
                    limits: tuple[Limit | str, ...] = ()) -> tuple[str, int, float]:
    """Run attempts until one succeeds: (output, attempts used, first start time).

    Between attempts the failure is journaled as ``retrying`` with its due time, so the
    count and the back-off survive a crash; a long back-off parks the run. Each attempt of a
    step with ``limits`` first takes their tokens (or parks the run) and gives its semaphore
    slots back when it ends.
    """
    attempts = entry.attempts if entry is not None else 0
    due = entry.due_at if entry is not None else None
    started = (entry.started_at if entry is not None else None) or ctx.clock.time()
    cancellable = kind == "step"  # compensations run *because* of a cancel: never interrupt
    while True:
        if due is not None:
            await ctx.wait_until(due, f"retry of {kind} {name!r}", cancellable=cancellable)
        # A step the dead previous worker may have been executing runs again rather than being
        # pre-empted by a cancel: if its side effect happened, it is then journaled and
        # compensated, as in a crash-free run where the cancel arrives after the step.
        if ctx.pause_requested:
            await ctx.pause_point()
        if cancellable and not ctx.recovered:
            await ctx.deliver_cancel(seq, kind, name)
        # Values the run has produced so far (now(), uuid4()) are durable before a side effect
        # can carry them out of the run.
        await ctx.flush()
        held = await acquire(ctx, seq, limits, name) if limits else False
        token = active_step.set(StepScope(ctx.run_id, seq, attempts + 1, ctx.generation))
        watch = ctx.hooks.attempt(seq, kind, name, attempts + 1)
        try:
            with watch:
                output = await attempt()
            return output, attempts + 1, started
        except Exception as exc:
            attempts += 1
            final = isinstance(exc, NonRetryable | _NotRetryable) or attempts >= policy.max_attempts
            cause = exc.cause if isinstance(exc, _NotRetryable | Escaped) else exc
            error = ErrorInfo.from_exception(cause)
            stored = await ctx.store_payload(error.to_json(), f"the error of {kind} {name!r}",
                                             limit=False)
            due = None if final else ctx.clock.time() + policy.delay(attempts)
            watch.failed(cause, retry_at=due)
            if due is None:
                await ctx.write(JournalEntry(seq, kind, name, "failed", attempts,
                                             error=stored, started_at=started,
                                             finished_at=ctx.clock.time()))
                raise _Exhausted(error, attempts) from None
            await ctx.write(JournalEntry(seq, kind, name, "retrying", attempts,
                                         error=stored, due_at=due, started_at=started))
        finally:
            active_step.reset(token)
            if held:
                await release(ctx, seq)


def _step_error(step: Step[Any, Any], info: ErrorInfo | None, attempts: int) -> Exception:
    """The exception a workflow sees for a failed step (the same on every replay)."""
    info = info or ErrorInfo("Error", "unknown")
    if info.type == _SERIALIZATION:
        return SerializationError(info.message)
    if info.type == _TOO_LARGE:
        return PayloadTooLarge(info.message)
    return StepFailed(step.name, cause_type=info.type, cause_message=info.message,
                      cause_traceback=info.traceback, attempts=attempts)


def _remember(ctx: RunContext, seq: int, step: Step[Any, Any], args: tuple[Any, ...],
              kwargs: dict[str, Any], value: Any) -> None:
    if step.compensate is not None:
        ctx.compensable.append(CompletedStep(seq, step, args, kwargs, value))


def _compensation_call(compensate: Callable[..., Any], done: CompletedStep
                       ) -> Callable[[], Awaitable[Any]]:
    """A zero-argument attempt of the compensation: the step's arguments, and ``result=``
    when the compensation accepts it."""
    fn: Callable[..., Any] = compensate.fn if isinstance(compensate, Step) else compensate
    kwargs = dict(done.kwargs)
    try:
        params = inspect.signature(fn).parameters
        if "result" in params:
            kwargs["result"] = done.result
    except (TypeError, ValueError):
        pass
    if isinstance(compensate, Step):
        target = compensate

        async def run_step_fn() -> Any:
            return await target.invoke(done.args, kwargs)

        return run_step_fn

    async def run_plain() -> Any:
        if inspect.iscoroutinefunction(fn):
            return await contained(fn(*done.args, **kwargs))
        return await contained(asyncio.to_thread(fn, *done.args, **kwargs))

    return run_plain
