"""Replaying exported journals against the current code, without executing anything.

The replayer drives the workflow function with the same :class:`RunContext` a worker uses, so
every durable operation is matched against the journal by the same rules (kind and name at each
seq, patches, recorded values decoded by the current types). What it must never do is execute:

* a step whose outcome is not journaled is not run: the replay ends there (``_End``);
* the context's storage is a stand-in whose every call ends the replay, so a wait, a signal, a
  child or a value that was not recorded ends it too, and nothing is written anywhere;
* a wait that is journaled but not yet over ends it (``park_after=0``: the wait parks at once).

Where the replay ends is then judged against how the recorded run stood: a finished run must be
replayed to its end exactly (no operation more, none left over, the same kind of ending); an
unfinished run may end where its journal ends, but not before entries that remain unconsumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

from perdure.clock import VirtualClock
from perdure.engine.histories import ExportedRun
from perdure.errors import ReplayMismatch, SerializationError
from perdure.records import JournalEntry, RunStatus
from perdure.storage.port import Storage
from perdure.workflow.context import RunContext
from perdure.workflow.continuation import ContinueAsNew
from perdure.workflow.definitions import PASS_THROUGH, Step, Workflow
from perdure.workflow.registry import Registry
from perdure.workflow.scope import active_run
from perdure.workflow.steps import run_step
from perdure.workflow.stops import Blocked, Stop, Suspend

__all__ = ["ReplayReport", "replay_runs"]

_FINAL = ("completed", "failed", "cancelled")


@dataclass
class ReplayReport:
    """What a replay covered: the runs replayed, and those skipped (of other workflows)."""

    replayed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _End(Stop):
    """Internal: the replay reached what the journal does not hold."""

    def __init__(self, seq: int, what: str) -> None:
        super().__init__(what)
        self.seq = seq
        self.what = what


class _NoStorage:
    """Stands in for the storage during a replay: any call ends the replay (the code reached
    an operation the journal does not hold), so nothing is written or read."""

    def __init__(self) -> None:
        self.ctx: RunContext | None = None

    def __getattr__(self, name: str) -> Any:
        def end(*args: Any, **kwargs: Any) -> NoReturn:
            seq = self.ctx.seq - 1 if self.ctx is not None else 0
            what = f"the storage ({name})"
            if name in ("put_entry", "write_entry") and len(args) >= 4 \
                    and isinstance(args[3], JournalEntry):
                entry = args[3]
                what = f"{entry.kind} {entry.name!r}"
                seq = entry.seq
            if self.ctx is not None:
                self.ctx.halt(_End(seq, what))  # remembered: the workflow cannot swallow it
            raise _End(seq, what)

        return end


async def _replay_step(ctx: RunContext, seq: int, step: Step[Any, Any], args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
    entry = ctx.journal.get(seq)
    if entry is None or entry.status not in _FINAL:
        if entry is not None:
            ctx.recorded(seq, "step", step.name)  # a mismatch blocks
        ctx.halt(_End(seq, f"step {step.name!r}"))
    return await run_step(ctx, seq, step, args, kwargs)


async def replay_runs(workflows: Workflow[Any, Any] | Iterable[Workflow[Any, Any]],
                      runs: Iterable[ExportedRun]) -> ReplayReport:
    """Replay every run of these workflows' names; raise ``ReplayMismatch`` at the first that
    the code does not replay. A run replays against the given workflow of its exact version if
    there is one, else against the default version of its name; runs of other names are
    skipped."""
    registry = Registry(workflows)
    report = ReplayReport()
    for run in runs:
        wf = registry.version(run.workflow, run.version) or registry.get(run.workflow)
        if wf is None:
            report.skipped.append(run.id)
            continue
        await _replay_one(run, wf, registry)
        report.replayed.append(run.id)
    return report


async def _replay_one(run: ExportedRun, wf: Workflow[Any, Any], registry: Registry) -> None:
    def mismatch(seq: int | None, reason: str) -> NoReturn:
        raise ReplayMismatch(run.id, seq, reason, path=run.path)

    store = _NoStorage()
    last = max((t for e in run.journal for t in (e.started_at, e.finished_at)
                if t is not None), default=None)
    ctx = RunContext(run.id, 0, "replay", wf, cast(Storage, store), VirtualClock(last), 0.0,
                     {e.seq: e for e in run.journal}, _replay_step, registry,
                     generation=run.generation, linger=False)
    store.ctx = ctx
    finished = run.status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
    token = active_run.set(ctx)
    try:
        try:
            args, kwargs = wf.codec.decode_args(run.input)
        except SerializationError as exc:
            mismatch(None, f"the code cannot decode the run's arguments: {exc}")
        ending, raised = "completed", None
        try:
            await wf.fn(*args, **kwargs)
        except ContinueAsNew:
            ending = "continued"
        except (_End, Suspend) as stop:
            ending = "open"
            if finished:
                what = stop.what if isinstance(stop, _End) else f"a wait ({stop.reason})"
                seq = stop.seq if isinstance(stop, _End) else ctx.seq - 1
                mismatch(seq, f"the code goes on with {what}, but the recorded run "
                              f"{run.status} after {_ops(run.journal)}")
        except PASS_THROUGH:
            raise
        except BaseException as exc:
            raised = exc
            ending = await _compensations(ctx, run, finished, mismatch)
        if ending == "continued" and finished:
            mismatch(ctx.seq, f"the code continues as new, but the recorded run {run.status}")
        if finished and ending == "completed" and run.status != RunStatus.COMPLETED:
            mismatch(ctx.seq, f"the code returns, but the recorded run {run.status}")
        if finished and ending == "failed" and run.status == RunStatus.COMPLETED:
            mismatch(ctx.seq, f"the code raises {type(raised).__name__}: {raised}, but the "
                              "recorded run completed")
        extra = ctx.unconsumed()
        if extra and ending != "open":
            first = min(extra, key=lambda e: e.seq)
            mismatch(first.seq, f"the code ends after {ctx.seq} operation(s), but the journal "
                                f"holds {first.kind} {first.name!r} at seq {first.seq}")
        if extra and ending == "open":
            first = min(extra, key=lambda e: e.seq)
            mismatch(first.seq, f"the replay stopped at seq {ctx.seq - 1}, before the journal's "
                                f"{first.kind} {first.name!r} at seq {first.seq}")
    except Blocked as blocked:
        mismatch(blocked.seq, blocked.reason)
    finally:
        active_run.reset(token)


async def _compensations(ctx: RunContext, run: ExportedRun, finished: bool,
                         mismatch: Callable[[int | None, str], NoReturn]) -> str:
    """Follow the saga the runner would run, matching each compensation with the journal
    (never executing one): "failed", or "open" where the recorded rollback stops."""
    for done in reversed(ctx.compensable):
        seq = ctx.take_seq()
        entry = ctx.recorded(seq, "compensation", done.step.name)
        if entry is None or entry.status not in ("completed", "failed"):
            if finished:
                mismatch(seq, f"the code compensates step {done.step.name!r} here, but the "
                              f"recorded run {run.status} without it")
            return "open"
    return "failed"


def _ops(journal: tuple[JournalEntry, ...]) -> str:
    if not journal:
        return "no operation"
    return f"{len(journal)} operation(s) (last: seq {journal[-1].seq})"
