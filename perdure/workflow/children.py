"""Child workflows: a run starts another run exactly once and waits durably for its result."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar, cast

from perdure import validate
from perdure.errors import ChildFailed, SerializationError
from perdure.records import ErrorInfo, JournalEntry, RunStatus
from perdure.storage.port import NewRun
from perdure.workflow.context import RunContext, current
from perdure.workflow.definitions import Workflow
from perdure.workflow.stops import Blocked

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

    Its id defaults to the parent's id and this call's sequence number (and the parent's
    generation after a continue-as-new or a resume of a failed run). The child must be
    registered on the engine: if this worker lacks it, the parent stops in ``blocked`` (a
    deployment error, never compensated) until it is resumed on a worker that has it. The
    child's failure surfaces as ``ChildFailed`` from ``result()``, and cancelling the parent
    cancels it.
    """
    ctx = current("perdure.start_child()")
    if id is not None:
        validate.name(id, "a child run id", max_length=255)
    if not ctx.registry.has(wf):
        # A deployment mistake, not the workflow's error: failing the run would compensate
        # what it did (refund a shipped order). Block it; resume once the worker has the code.
        what = f"workflow {wf.name!r} version {wf.version!r}" if isinstance(wf, Workflow) \
            else f"{wf!r} (not a @workflow)"
        ctx.halt(Blocked(
            f"cannot start child {what}: it is not registered on this worker. Deploy a worker "
            f"that has it (Engine(..., workflows=[...])) and resume the run."))
    seq = ctx.take_seq()
    return _start_child(ctx, seq, wf, args, kwargs, id)


async def _start_child(ctx: RunContext, seq: int, wf: Workflow[Any, R], args: tuple[Any, ...],
                       kwargs: dict[str, Any], child_id: str | None) -> ChildHandle[R]:
    entry = ctx.recorded(seq, "child", wf.name)
    if entry is not None:
        ctx.replay_cancel(entry)
        return ChildHandle(json.loads(entry.output or "null"), wf)
    await ctx.deliver_cancel(seq, "child", wf.name)
    text = wf.codec.encode_args(args, kwargs, limit=ctx.payloads.max_payload)
    if child_id is None:
        # Seqs restart in a new generation (a continue-as-new, a resume after a failure): the
        # generation keeps the default id apart from the child started at this seq before.
        child_id = f"{ctx.run_id}/{seq}" + (f":g{ctx.generation}" if ctx.generation else "")
    text = await ctx.store_payload(text, f"the arguments of child workflow {wf.name!r}")
    await ctx.flush()
    now = ctx.clock.time()
    started = JournalEntry(seq, "child", wf.name, "completed", 1, json.dumps(child_id),
                           finished_at=now)
    child = NewRun(child_id, wf.name, wf.version, text, now, parent_id=ctx.run_id,
                   parent_seq=seq, trace_context=ctx.hooks.trace_context())
    # Idempotent: a retry finds the child created and the entry written by a first attempt.
    await ctx.guard(lambda: ctx.store.start_child(ctx.run_id, ctx.epoch, ctx.worker, started,
                                                  child))
    ctx.hooks.child_started(child_id, wf.name)
    ctx.notify()
    return ChildHandle(child_id, wf)


async def _join(ctx: RunContext, seq: int, child: ChildHandle[R]) -> R:
    entry = ctx.recorded(seq, "join", child.id)
    if entry is None:
        while True:
            mark = ctx.mark()
            await ctx.deliver_cancel(seq, "join", child.id)
            row = await ctx.guard(lambda: ctx.store.get_run(child.id))
            if row is None:
                # Created with the parent's journal entry, so only an operator can have
                # removed it (`perdure runs prune` of a failed parent's finished child, then
                # a resume of the parent): a deployment matter, never the workflow's error.
                ctx.halt(Blocked(
                    f"child run {child.id!r} no longer exists (was it pruned?), so its "
                    "result cannot be read. Start the parent afresh or restore the child."))
            if RunStatus(row.status).terminal:
                # The child's stored result or error is journaled as it is (already in its
                # stored form: encrypted, or a blob reference).
                error = row.error
                if row.status == RunStatus.CANCELLED:
                    cancelled = await ctx.load_payload(error, f"the error of child {child.id!r}")
                    error = await ctx.store_payload(_cancelled_error(cancelled),
                                            f"the error of child {child.id!r}", limit=False)
                entry = JournalEntry(seq, "join", child.id, "completed" if row.status ==
                                     RunStatus.COMPLETED else "failed", 1, row.output,
                                     error, finished_at=ctx.clock.time())
                await ctx.write(entry)
                break
            await ctx.pause(None, (f"child:{child.id}",), f"waiting for child {child.id!r}",
                            linger=True, mark=mark)
    ctx.replay_cancel(entry)
    what = f"the outcome of child {child.id!r}"
    if entry.status == "completed":
        text = await ctx.load_payload(entry.output, what)
        try:
            return cast(R, child.workflow.codec.decode_result(text or "null"))
        except SerializationError as exc:
            ctx.halt(ctx.undecodable(f"the result of child run {child.id!r}", exc))
    error = await ctx.load_payload(entry.error, what)
    info = ErrorInfo.from_json(error) or ErrorInfo("Error", "unknown")
    raise ChildFailed(child.id, cause_type=info.type, cause_message=info.message,
                      cause_traceback=info.traceback)


def _cancelled_error(error: str | None) -> str:
    info = ErrorInfo.from_json(error)
    message = info.message if info is not None else "cancelled"
    return ErrorInfo("perdure.errors.RunCancelled", f"the child was cancelled: {message}",
                     info.traceback if info else "").to_json()
