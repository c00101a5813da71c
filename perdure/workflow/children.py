"""Child workflows: a run starts another run exactly once and waits durably for its result."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar, cast

from perdure.errors import ChildFailed, InvalidConfiguration, UnknownWorkflowError
from perdure.records import ErrorInfo, JournalEntry, RunStatus
from perdure.storage.port import NewRun
from perdure.workflow.context import RunContext, current
from perdure.workflow.definitions import Workflow

__all__ = ["ChildHandle", "start_child"]

R = TypeVar("R")


class ChildHandle(Generic[R]):
    """A child run started by a workflow; ``await child.result()`` waits for it durably."""

    def __init__(self, run_id: str, workflow: Workflow[Any, R]) -> None:
        self.id = run_id
        self.workflow = workflow

    def result(self) -> Coroutine[Any, Any, R]:
        """Wait durably for the child's result; raises ``ChildFailed`` if it failed or was
        cancelled."""
        ctx = current("child.result()")
        seq = ctx.take_seq()
        return _join(ctx, seq, self)

    def __repr__(self) -> str:
        return f"<ChildHandle {self.id!r}>"


def start_child(wf: Workflow[Any, R], *args: Any, id: str | None = None,
                **kwargs: Any) -> Coroutine[Any, Any, ChildHandle[R]]:
    """Start a child workflow run, exactly once for this point of the parent.

    Its id defaults to the parent's id and this call's sequence number. The child must be
    registered on the engine; its failure surfaces as ``ChildFailed`` from ``result()``, and
    cancelling the parent cancels it.
    """
    ctx = current("perdure.start_child()")
    name = getattr(wf, "name", None)
    if not isinstance(wf, Workflow) or ctx.registry.get(name) is not wf:  # type: ignore[arg-type]
        raise UnknownWorkflowError(
            f"child workflow {wf!r} is not registered on this engine; pass it in "
            "Engine(..., workflows=[...])")
    if id is not None and (not isinstance(id, str) or not id):
        raise InvalidConfiguration(f"a child run id must be a non-empty string, not {id!r}")
    seq = ctx.take_seq()
    return _start_child(ctx, seq, wf, args, kwargs, id)


async def _start_child(ctx: RunContext, seq: int, wf: Workflow[Any, R], args: tuple[Any, ...],
                       kwargs: dict[str, Any], child_id: str | None) -> ChildHandle[R]:
    entry = ctx.recorded(seq, "child", wf.name)
    if entry is not None:
        ctx.replay_cancel(entry)
        return ChildHandle(json.loads(entry.output or "null"), wf)
    await ctx.deliver_cancel(seq, "child", wf.name)
    text = wf.codec.encode_args(args, kwargs)
    child_id = child_id or f"{ctx.run_id}/{seq}"
    await ctx.flush()
    now = ctx.clock.time()
    started = JournalEntry(seq, "child", wf.name, "completed", 1, json.dumps(child_id),
                           finished_at=now)
    child = NewRun(child_id, wf.name, wf.version, text, now, parent_id=ctx.run_id,
                   parent_seq=seq)
    # Idempotent: a retry finds the child created and the entry written by a first attempt.
    await ctx.guard(lambda: ctx.store.start_child(ctx.run_id, ctx.epoch, ctx.worker, started,
                                                  child))
    ctx.notify()
    return ChildHandle(child_id, wf)


async def _join(ctx: RunContext, seq: int, child: ChildHandle[R]) -> R:
    entry = ctx.recorded(seq, "join", child.id)
    if entry is None:
        while True:
            mark = ctx.mark()
            await ctx.deliver_cancel(seq, "join", child.id)
            row = await ctx.guard(lambda: ctx.store.get_run(child.id))
            if row is not None and RunStatus(row.status).terminal:
                entry = JournalEntry(seq, "join", child.id, "completed" if row.status ==
                                     RunStatus.COMPLETED else "failed", 1, row.output,
                                     row.error if row.status != RunStatus.CANCELLED else
                                     _cancelled_error(row.error), finished_at=ctx.clock.time())
                await ctx.write(entry)
                break
            await ctx.pause(None, (f"child:{child.id}",), f"waiting for child {child.id!r}",
                            linger=True, mark=mark)
    ctx.replay_cancel(entry)
    if entry.status == "completed":
        return cast(R, child.workflow.codec.decode_result(entry.output or "null"))
    info = entry.error_info or ErrorInfo("Error", "unknown")
    raise ChildFailed(child.id, cause_type=info.type, cause_message=info.message,
                      cause_traceback=info.traceback)


def _cancelled_error(error: str | None) -> str:
    info = ErrorInfo.from_json(error)
    message = info.message if info is not None else "cancelled"
    return ErrorInfo("perdure.errors.RunCancelled", f"the child was cancelled: {message}",
                     info.traceback if info else "").to_json()
