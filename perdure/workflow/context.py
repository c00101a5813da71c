"""The running workflow's context: its journal, its sequence numbers, its waits.

A run's coroutine executes with a :class:`RunContext` in a context variable (see ``scope``).
Every durable operation takes the next sequence number from it synchronously, at call time,
then either returns the journaled outcome for that number (replay) or executes and journals it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar, cast

from perdure.clock import Clock
from perdure.errors import (
    Cancelled,
    InvalidConfiguration,
    LeaseLost,
    PayloadTooLarge,
    PayloadUnavailable,
    StorageUnavailable,
)
from perdure.flow.registry import FlowRegistry
from perdure.records import JournalEntry
from perdure.storage.port import Storage
from perdure.workflow.definitions import Step, Workflow
from perdure.workflow.hooks import NO_HOOKS, RunHooks
from perdure.workflow.payloads import Payloads
from perdure.workflow.registry import Registry
from perdure.workflow.scope import run_or_raise
from perdure.workflow.sleepers import Sleepers
from perdure.workflow.stops import Blocked, Lost, Stop, Suspend, Unavailable
from perdure.workflow.talk import TalkState

T = TypeVar("T")
log = logging.getLogger("perdure")

#: back-off between attempts of a write the database could not take (seconds, real time)
_RETRY_FIRST, _RETRY_MAX = 0.02, 1.0

__all__ = ["CompletedStep", "RunContext", "StepExecutor", "current"]

#: how a step call is executed: (context, seq, step, args, kwargs) -> its outcome. The runner
#: passes the in-workflow step machinery in, so this module need not import it.
StepExecutor = Callable[["RunContext", int, Step[Any, Any], tuple[Any, ...], dict[str, Any]],
                        Coroutine[Any, Any, Any]]


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
    execute_step: StepExecutor
    #: the workflows (every version) this worker serves: children and continue-as-new
    registry: Registry = field(default_factory=Registry)
    deadline: float | None = None
    parent_id: str | None = None
    #: resumes after a failure so far: part of the keys of the steps executed now
    generation: int = 0
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
    #: tells this process's readers that the run published something (an event, a stream
    #: item, a reply): they re-read at once instead of at their next check
    published: Callable[[str], None] = lambda run_id: None
    #: events, streams and requests remember here what the run's code did so far
    talk: TalkState = field(default_factory=TalkState)
    #: what this execution reports as it goes (logs, traces, metrics), given by the engine
    hooks: RunHooks = NO_HOOKS
    #: until when (``clock`` time) our lease is known to hold; renewed by the heartbeat. A
    #: write the database cannot take is retried until then.
    lease_until: float = math.inf
    #: an operator asked to pause the run: it parks at its next durable await
    pause_requested: bool = False
    #: patch ids answered so far (``patched``: True or False; ``deprecate_patch``: None)
    patches: dict[str, bool | None] = field(default_factory=dict)
    _pending: list[tuple[JournalEntry, asyncio.Future[None]]] = field(default_factory=list)
    #: the engine's queues and limits (what a step's limit names resolve to)
    flow: FlowRegistry | None = None
    #: abandoned as a crash would (``Engine.abort``): even clean-up writes are skipped
    abandoned: bool = False
    _writes: int = 0
    #: the engine's payload pipeline (size limit, codec, blob offload)
    payloads: Payloads = field(default_factory=Payloads)
    #: the worker's count of runs waiting in memory for a timer without holding a slot
    sleepers: Sleepers | None = None

    def __post_init__(self) -> None:
        #: the highest seq the loaded journal holds (-1: empty): below it the run replays what
        #: an earlier execution recorded, above it the code runs new
        self.journal_end = max(self.journal, default=-1)

    def call_step(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> Coroutine[Any, Any, Any]:
        """A step called by the workflow: numbered now, executed (or replayed) when awaited."""
        return self.execute_step(self, self.take_seq(), step, args, kwargs)

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
                f"{self.workflow.version!r}) and resume the run.", seq=seq))
        return entry

    def halt(self, stop: Stop) -> NoReturn:
        """Remember ``stop`` (the first one wins) and raise it."""
        if self.stop is None:
            self.stop = stop
        raise self.stop

    def undecodable(self, what: str, exc: Exception) -> Blocked:
        """The stop for a recorded payload this deployment cannot decode: the code that wrote
        it differs from the code reading it (a deployment error, not the workflow's)."""
        return Blocked(
            f"cannot decode {what} with the code deployed on this worker: {exc}. Deploy code "
            f"whose types match what the run recorded (workflow {self.workflow.name!r} "
            f"version {self.workflow.version!r}) and resume the run.")

    def unconsumed(self) -> list[JournalEntry]:
        """Journal entries past the last sequence number this execution reached."""
        return [e for s, e in self.journal.items() if s >= self.seq]

    def write_nowait(self, entry: JournalEntry) -> None:
        """Queue a journal write without waiting for it (for values only the run itself has
        seen, such as ``now()``): it commits before any later write of this run, and
        :meth:`flush` runs before anything leaves the run (a step, the result)."""
        self._pending.append((entry, self._put(entry)))
        self.recovered = False

    def _put(self, entry: JournalEntry) -> asyncio.Future[None]:
        return self.store.put_entry(self.run_id, self.epoch, self.worker, entry)

    async def write(self, entry: JournalEntry) -> None:
        """Journal ``entry`` and wait until it is committed (fenced by our epoch)."""
        if self._pending:  # queued writes of this run commit first, in order
            self.write_nowait(entry)
            await self.flush()
        else:  # the common case: the adapter may commit it in this task (no queue hop)
            self.recovered = False
            await self.guard(functools.partial(self.store.write_entry, self.run_id,
                                               self.epoch, self.worker, entry))
        self._writes += 1
        if self._writes % 16 == 0:
            # A write may complete without yielding (an inline commit): give the loop a turn
            # now and then, so that a long run of quick steps cannot starve the heartbeat.
            await asyncio.sleep(0)

    async def guard(self, write: Callable[[], Awaitable[T]]) -> T:
        """Await a storage call made for this run (``write()`` makes a fresh attempt): a
        fenced-off one becomes :class:`Lost`; one the database cannot take is retried while
        our lease holds, and then becomes :class:`Unavailable` — never an exception the
        workflow sees, because the database's trouble is not the workflow's failure."""
        try:
            return await self.retrying(write)
        except LeaseLost as exc:
            self.halt(Lost(str(exc)))
        except StorageUnavailable as exc:
            self.halt(Unavailable(f"the database is unavailable: {exc}"))
        raise AssertionError("unreachable")  # pragma: no cover

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, calling it again with back-off while it raises
        :class:`StorageUnavailable` and our lease holds (then the error is raised). Every call
        the engine makes for a run is safe to repeat: fenced, and idempotent once committed."""
        delay = _RETRY_FIRST
        while True:
            try:
                return await call()
            except StorageUnavailable as exc:
                # Real time: the database comes back in the real world, not in workflow time.
                if self.clock.time() + delay >= self.lease_until:
                    log.warning("run %s: the database stayed unavailable while the lease "
                                "held; letting the run go (%s)", self.run_id, exc)
                    raise
                if delay == _RETRY_FIRST:
                    log.warning("run %s: the database is unavailable; retrying while the "
                                "lease holds (%s)", self.run_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    async def flush(self) -> None:
        """Wait for every queued write (one the database could not take is written again,
        see :meth:`guard`); turn a fenced-off write into :class:`Lost`."""
        while self._pending:
            pending, self._pending = self._pending, []
            if len(pending) == 1:  # the common case: no wait() machinery
                entry, fut = pending[0]
                try:
                    await fut
                    continue
                except LeaseLost as exc:
                    self.halt(Lost(str(exc)))
                except StorageUnavailable:
                    pass
                await self.guard(functools.partial(self._put, entry))
                continue
            await asyncio.wait([fut for _, fut in pending])
            errors = [fut.exception() for _, fut in pending]
            for (entry, _), error in zip(pending, errors, strict=True):  # in the run's order
                if isinstance(error, LeaseLost):
                    self.halt(Lost(str(error)))
                if isinstance(error, StorageUnavailable):
                    await self.guard(functools.partial(self._put, entry))
                elif error is not None:
                    raise error

    # -- payloads ---------------------------------------------------------------------------

    async def store_payload(self, text: str, what: str, *, limit: bool = True) -> str:
        """The row form of payload ``text`` (see :class:`Payloads`). Over the size limit is
        the workflow's own error (:class:`~perdure.errors.PayloadTooLarge`, at the call); a
        blob store that fails is infrastructure: the run is let go and resumed elsewhere."""
        try:
            return await self.payloads.store(text, what, limit=limit)
        except PayloadTooLarge:
            raise
        except InvalidConfiguration as exc:  # the codec failed: fix the deployment, resume
            self.halt(Blocked(f"cannot store {what}: {exc}"))
        except Exception as exc:
            self.halt(Lost(f"cannot store {what}: {type(exc).__name__}: {exc}"))
        raise AssertionError("unreachable")  # pragma: no cover

    async def load_payload(self, stored: str | None, what: str) -> str | None:
        """The JSON text of a stored payload. A payload this process cannot read (its key or
        its blob is missing) blocks the run for an operator; a blob store that fails lets the
        run go, to be resumed elsewhere. Neither ever fails the run."""
        try:
            return await self.payloads.load(stored)
        except PayloadUnavailable as exc:
            self.halt(Blocked(f"cannot read {what}: {exc}"))
        except Exception as exc:
            self.halt(Lost(f"cannot read {what}: {type(exc).__name__}: {exc}"))
        raise AssertionError("unreachable")  # pragma: no cover

    def open_payload(self, stored: str, what: str) -> str:
        """The JSON text of a value written by ``payloads.seal`` (blocks the run if this
        process cannot read it)."""
        try:
            return self.payloads.open(stored)
        except PayloadUnavailable as exc:
            self.halt(Blocked(f"cannot read {what}: {exc}"))
            raise AssertionError("unreachable") from None  # pragma: no cover

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
            await self.pause_point()
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
        self.hooks.waiting(reason, limit)
        if remaining is not None and remaining <= self.park_after:
            # A bare timer (no event awaited) waits without holding a concurrency slot.
            sleepers = self.sleepers
            if waiting_for or sleepers is None or not sleepers.enter():
                return await self._poked_within(mark, remaining)
            try:
                return await self._poked_within(mark, remaining)
            finally:
                sleepers.leave()
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

    async def pause_point(self) -> None:
        """A durable await: if an operator asked to pause the run, park it here (its writes
        flushed first). The park is a plain wait whose due time is now; the database turns it
        into status ``paused`` while the request stands, and a claimable run if it was
        withdrawn meanwhile (see ``park_run``)."""
        if self.pause_requested:
            await self.flush()
            self.halt(Suspend(self.clock.time(), "paused by an operator"))

    def cancel_pending(self) -> bool:
        """Whether a cancellation (requested, or the deadline passed) awaits delivery."""
        if self.cancel_delivered:
            return False
        if self.deadline is not None and self.clock.time() >= self.deadline:
            self.cancel_requested = True
        return self.cancel_requested

    async def deliver_cancel(self, seq: int, kind: str, name: str) -> None:
        """Raise ``Cancelled`` at this durable await, journaled so replay raises it here too
        (and park the run here if an operator paused it)."""
        if self.pause_requested:
            await self.pause_point()
        if self.cancel_pending():
            await self.write(JournalEntry(seq, kind, name, "cancelled", 0,
                                          finished_at=self.clock.time()))
            self.cancel_delivered = True
            raise Cancelled("the run was cancelled")

    def replay_cancel(self, entry: JournalEntry) -> None:
        """A journaled cancellation: raise it again at the same place."""
        if entry.status == "cancelled":
            self.cancel_delivered = True
            raise Cancelled("the run was cancelled")




def current(what: str) -> RunContext:
    """The running workflow's context, or a clear error naming ``what`` was misused."""
    # Only the runner sets the run variable, and always to a RunContext.
    return cast(RunContext, run_or_raise(what))
