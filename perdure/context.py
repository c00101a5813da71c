"""The running workflow's context, and the in-workflow functions that read it.

A run's coroutine executes with a :class:`RunContext` in a context variable. Every durable
operation takes the next sequence number from it synchronously, at call time, then either
returns the journaled outcome for that number (replay) or executes and journals it.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.errors import LeaseLost, NotInWorkflow
from perdure.records import JournalEntry

if TYPE_CHECKING:
    from perdure.clock import Clock
    from perdure.definitions import Step, Workflow
    from perdure.storage.port import Storage

T = TypeVar("T")

__all__ = ["RunContext", "call_step", "now", "random", "run_id", "step_key", "uuid4"]


class Stop(BaseException):
    """Internal: the run must stop being driven by this worker now.

    A ``BaseException`` so that a workflow's ``except Exception`` does not swallow it; and the
    context remembers it, so even a bare ``except:`` cannot make the run carry on.
    """


class Suspend(Stop):
    """Park the run until ``wake_at`` (unix seconds; None: no timer) or until one of
    ``waiting_for`` ("signal:NAME", "child:ID") happens."""

    def __init__(self, wake_at: float | None, reason: str,
                 waiting_for: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.wake_at = wake_at
        self.reason = reason
        self.waiting_for = waiting_for

    @staticmethod
    def combine(stops: list[Suspend]) -> Suspend:
        """One park for several concurrent waits (``gather``): the earliest timer, and every
        event any of them waits for."""
        dues = [s.wake_at for s in stops if s.wake_at is not None]
        events = tuple(dict.fromkeys(e for s in stops for e in s.waiting_for))
        return Suspend(min(dues) if dues else None, "; ".join(s.reason for s in stops), events)


class Blocked(Stop):
    """Replay diverged from the journal: stop for an operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Lost(Stop):
    """Another worker owns the run now (our epoch is stale)."""


@dataclass(slots=True)
class StepScope:
    """Set while a step attempt runs: what ``step_key()`` and nested calls see."""

    run_id: str
    seq: int
    attempt: int


@dataclass(slots=True)
class CompletedStep:
    """A completed step that has a compensation, kept for the saga."""

    seq: int
    step: Step[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any


@dataclass(eq=False)
class RunContext:
    """Everything a run's durable operations need while one worker drives it."""

    run_id: str
    epoch: int
    worker: str
    workflow: Workflow[Any, Any]
    store: Storage
    clock: Clock
    park_after: float
    journal: dict[int, JournalEntry]
    registry: dict[str, Workflow[Any, Any]] = field(default_factory=dict)
    deadline: float | None = None
    parent_id: str | None = None
    seq: int = 0
    stop: Stop | None = None
    cancel_requested: bool = False
    cancel_delivered: bool = False
    #: claimed from a dead worker and nothing journaled yet by this execution: the steps at
    #: the frontier may have run already, so a cancel must not pre-empt them (see execution)
    recovered: bool = False
    compensable: list[CompletedStep] = field(default_factory=list)
    #: set (and replaced) when something this run may wait for happens in this process: a
    #: signal, a child settling, a cancel request. A wait takes the current event *before*
    #: checking its condition, so a poke in between is never lost, and concurrent waits
    #: (gather) never consume each other's pokes.
    _poke: asyncio.Event = field(default_factory=asyncio.Event)
    #: durable operations executing right now (a step awaited by a task the workflow
    #: spawned, say with asyncio.gather, may outlive the workflow function itself)
    inflight: int = 0
    _settled: asyncio.Event = field(default_factory=asyncio.Event)
    #: waits may linger in memory before parking (off while the worker drains)
    linger: bool = True
    #: tells this process's worker that new work may be claimable (a child was started)
    notify: Callable[[], None] = lambda: None
    _pending: list[asyncio.Future[None]] = field(default_factory=list)
    _writes: int = 0

    def take_seq(self) -> int:
        """The next sequence number (called synchronously when an operation is called)."""
        if self.stop is not None:
            raise self.stop
        seq = self.seq
        self.seq += 1
        return seq

    def recorded(self, seq: int, kind: str, name: str) -> JournalEntry | None:
        """The journal's entry for ``seq``, checked against what the code asks for now."""
        entry = self.journal.get(seq)
        if entry is None:
            return None
        if entry.kind != kind or entry.name != name:
            self.halt(Blocked(
                f"non-determinism at seq {seq}: the journal recorded {entry.kind} "
                f"{entry.name!r} but the code now calls {kind} {name!r}. Deploy the code "
                f"this run started with (workflow {self.workflow.name!r} version "
                f"{self.workflow.version!r}) and resume the run."))
        return entry

    def halt(self, stop: Stop) -> None:
        """Remember ``stop`` (the first one wins) and raise it."""
        if self.stop is None:
            self.stop = stop
        raise self.stop

    def unconsumed(self) -> list[JournalEntry]:
        """Journal entries past the last sequence number this execution reached."""
        return [e for s, e in self.journal.items() if s >= self.seq]

    def write_nowait(self, entry: JournalEntry) -> None:
        """Queue a journal write without waiting for it (for values only the run itself has
        seen, such as ``now()``): it commits before any later write of this run, and
        :meth:`flush` runs before anything leaves the run (a step, the result)."""
        self._pending.append(self.store.put_entry(self.run_id, self.epoch, self.worker, entry))
        self.recovered = False

    async def write(self, entry: JournalEntry) -> None:
        """Journal ``entry`` and wait until it is committed (fenced by our epoch)."""
        self.write_nowait(entry)
        await self.flush()
        self._writes += 1
        if self._writes % 16 == 0:
            # A write may complete without yielding (an inline commit): give the loop a turn
            # now and then, so that a long run of quick steps cannot starve the heartbeat.
            await asyncio.sleep(0)

    async def guard(self, write: Awaitable[T]) -> T:
        """Await a fenced write, turning a fenced-off one into :class:`Lost`."""
        try:
            return await write
        except LeaseLost as exc:
            self.halt(Lost(str(exc)))
            raise AssertionError("unreachable") from None  # pragma: no cover

    async def flush(self) -> None:
        """Wait for every queued write; turn a fenced-off write into :class:`Lost`."""
        while self._pending:
            pending, self._pending = self._pending, []
            try:
                if len(pending) == 1:  # the common case: no gather() machinery
                    await pending[0]
                else:
                    await asyncio.gather(*pending)
            except LeaseLost as exc:
                self.halt(Lost(str(exc)))

    def begin_op(self) -> None:
        """An operation starts executing (not replaying)."""
        self.inflight += 1
        self._settled.clear()

    def end_op(self) -> None:
        """An operation finished executing, journaled or not."""
        self.inflight -= 1
        if self.inflight == 0:
            self._settled.set()

    async def settle_inflight(self) -> None:
        """Wait until no operation of this run still executes, so its outcome is journaled
        (and, for a completed step, compensable) before the run finishes or compensates."""
        if self.inflight:
            await self._settled.wait()

    def poke(self) -> None:
        """Wake every wait of this run so it re-checks its condition."""
        self._poke.set()
        self._poke = asyncio.Event()

    def mark(self) -> asyncio.Event:
        """Take before checking a wait's condition; pass to :meth:`pause`."""
        return self._poke

    async def wait_until(self, when: float, reason: str, *, cancellable: bool = True) -> None:
        """Wait for ``when``: in memory if it is near, else park the run (drop the coroutine).

        A cancellation interrupts a cancellable wait (the caller then delivers it).
        """
        while self.clock.time() < when:
            mark = self.mark()
            if cancellable and self.cancel_pending():
                return
            await self.pause(when, (), reason, linger=False, mark=mark)

    async def pause(self, due: float | None, waiting_for: tuple[str, ...], reason: str, *,
                    linger: bool, mark: asyncio.Event) -> bool:
        """Wait until poked (since ``mark``) or until ``due``; returns True when poked.

        A wait longer than ``park_after`` parks the run instead: its coroutine is dropped and
        the database row remembers ``due`` and ``waiting_for``. With ``linger`` the run first
        waits ``park_after`` in memory, so a quick reply (a signal, a short child) resumes it
        without a replay.
        """
        if mark.is_set():
            return True
        now = self.clock.time()
        limit = due
        if self.deadline is not None and not self.cancel_delivered:
            limit = self.deadline if limit is None else min(limit, self.deadline)
        remaining = None if limit is None else limit - now
        if remaining is not None and remaining <= 0:
            return False
        if remaining is not None and remaining <= self.park_after:
            return await self._poked_within(mark, remaining)
        # Lingering is a memory-for-latency trade, not workflow time: it runs on the real
        # clock even under a virtual one.
        if linger and self.linger and await self._poked_within(mark, self.park_after,
                                                               real=True):
            return True
        await self.flush()
        self.halt(Suspend(limit, reason, waiting_for))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _poked_within(self, mark: asyncio.Event, seconds: float, *,
                            real: bool = False) -> bool:
        poke = asyncio.ensure_future(mark.wait())
        timer = asyncio.ensure_future(asyncio.sleep(seconds) if real
                                      else self.clock.sleep(seconds))
        try:
            await asyncio.wait((poke, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            poke.cancel()
            timer.cancel()
        return mark.is_set()

    def cancel_pending(self) -> bool:
        """Whether a cancellation (requested, or the deadline passed) awaits delivery."""
        if self.cancel_delivered:
            return False
        if self.deadline is not None and self.clock.time() >= self.deadline:
            self.cancel_requested = True
        return self.cancel_requested

    async def deliver_cancel(self, seq: int, kind: str, name: str) -> None:
        """Raise ``Cancelled`` at this durable await, journaled so replay raises it here too."""
        from perdure.errors import Cancelled

        if self.cancel_pending():
            await self.write(JournalEntry(seq, kind, name, "cancelled", 0,
                                          finished_at=self.clock.time()))
            self.cancel_delivered = True
            raise Cancelled("the run was cancelled")

    def replay_cancel(self, entry: JournalEntry) -> None:
        """A journaled cancellation: raise it again at the same place."""
        from perdure.errors import Cancelled

        if entry.status == "cancelled":
            self.cancel_delivered = True
            raise Cancelled("the run was cancelled")


_run: ContextVar[RunContext | None] = ContextVar("perdure_run", default=None)
_step: ContextVar[StepScope | None] = ContextVar("perdure_step", default=None)


def current(what: str) -> RunContext:
    """The running workflow's context, or a clear error naming ``what`` was misused."""
    ctx = _run.get()
    if ctx is None:
        raise NotInWorkflow(
            f"{what} can only be called inside a running workflow; start one with "
            "engine.start(...) and call it from the workflow's code")
    return ctx


def call_step(step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
              ) -> Coroutine[Any, Any, Any]:
    """Dispatch a step call: journaled in a workflow, inline inside another step."""
    if _step.get() is not None:
        return step.invoke(args, kwargs)
    ctx = current(f"step {step.name!r}")
    seq = ctx.take_seq()
    from perdure.execution import run_step

    return run_step(ctx, seq, step, args, kwargs)


def _value(kind: str, make: Any) -> Any:
    """A journaled value: recorded on first execution, the recorded one on replay."""
    ctx = current(f"perdure.{kind}()")
    seq = ctx.take_seq()
    entry = ctx.recorded(seq, kind, kind)
    if entry is not None and entry.output is not None:
        return entry.output
    text = make(ctx)
    ctx.write_nowait(JournalEntry(seq, kind, kind, "completed", 1, text,
                                  finished_at=ctx.clock.time()))
    return text


def now() -> datetime:
    """The current time (UTC), journaled: a replay returns the same value.

    Inside a step it is simply the current time (steps are not replayed).
    """
    if _step.get() is not None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(float(_value("now", lambda c: repr(c.clock.time()))), UTC)


def uuid4() -> _uuid.UUID:
    """A random UUID, journaled: a replay returns the same value."""
    if _step.get() is not None:
        return _uuid.uuid4()
    return _uuid.UUID(json.loads(_value("uuid4", lambda c: json.dumps(str(_uuid.uuid4())))))


def random() -> float:
    """A random float in [0, 1), journaled: a replay returns the same value."""
    if _step.get() is not None:
        return _random.random()
    return float(_value("random", lambda c: repr(_random.random())))


def step_key() -> str:
    """Inside a step: a stable idempotency key for this step of this run (run id + seq).

    The same on every attempt and after a crash, so an external API that deduplicates by key
    (payments, e-mail) performs the side effect once even though the step may run again.
    """
    scope = _step.get()
    if scope is None:
        raise NotInWorkflow("perdure.step_key() can only be called inside a step")
    return f"{scope.run_id}:{scope.seq}"


def run_id() -> str:
    """The id of the run being executed (inside a workflow or one of its steps)."""
    scope = _step.get()
    if scope is not None:
        return scope.run_id
    return current("perdure.run_id()").run_id
