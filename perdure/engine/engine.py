"""The engine: the one composition root that wires storage, clock, runner and worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from perdure import validate
from perdure.clock import Clock, CorrectedClock, SystemClock, is_authoritative
from perdure.codec import functions as codec
from perdure.codec.functions import FunctionCodec
from perdure.engine.clocksync import SYNC_EVERY, ClockSync
from perdure.engine.handle import WorkflowHandle
from perdure.engine.runner import Runner
from perdure.engine.talk import Talk
from perdure.engine.worker import Worker
from perdure.errors import (
    Cancelled,
    InvalidConfiguration,
    PerdureError,
    RunFinished,
    RunNotFound,
    StorageUnavailable,
    UnknownWorkflowError,
)
from perdure.flow.definitions import Limit, Queue
from perdure.flow.records import FlowReport
from perdure.flow.registry import FlowRegistry
from perdure.flow.routing import capabilities, labels_of
from perdure.flow.starts import plan
from perdure.records import (
    ErrorInfo,
    JournalEntry,
    ResumeRecord,
    RunInfo,
    RunRow,
    RunStatus,
    run_error,
)
from perdure.storage.factory import storage_for_url
from perdure.storage.port import NewRun, Storage, wf_key
from perdure.storage.urls import redact
from perdure.workflow.definitions import Workflow

__all__ = ["Engine"]

R = TypeVar("R")
log = logging.getLogger("perdure")


def _any_result() -> Any:
    return None


_ANY_CODEC = FunctionCodec(_any_result)

#: a worker that beat within this many seconds counts as live (routing reports)
LIVE_WINDOW = 30.0

# A worker waiting for its database at start-up retries after these many seconds, doubling.
_CONNECT_RETRY_FIRST = 0.25
_CONNECT_RETRY_MAX = 10.0


class Engine:
    """Starts, drives and inspects durable workflow runs on one database.

    ``Engine(url, workflows=[...])`` is a worker: it claims and executes runs of those
    workflows. ``worker=False`` makes a client that starts and inspects runs only. Use it as an
    async context manager (or ``await engine.open()`` / ``await engine.close()``).

    Options: ``table_prefix`` lets several applications share a database; ``concurrency``
    bounds the runs driven at once; ``lease`` (seconds) is how long a claim lasts without a
    heartbeat (every ``heartbeat`` seconds); a wait longer than ``park_after`` seconds parks
    the run instead of holding its coroutine; ``shutdown_grace`` is how long ``close()`` lets
    in-flight runs finish before handing them back; ``synchronous`` is SQLite's durability
    (``"full"`` by default); ``clock`` injects time (see ``perdure.testing``).

    Time shared between workers (leases, due times, deadlines) is the database's: the engine
    measures its clock's offset to the database's clock when it opens and every 10 s after (a
    worker: every heartbeat, if that is shorter), and works in corrected time, warning when
    the offset exceeds a second. A clock
    marked ``authoritative`` (a ``VirtualClock``) is used uncorrected.
    """

    def __init__(self, url: str = "sqlite:///perdure.db", *,
                 workflows: Iterable[Workflow[Any, Any]] = (), worker: bool = True,
                 table_prefix: str = "perdure_", concurrency: int = 100, lease: float = 10.0,
                 heartbeat: float | None = None, park_after: float = 5.0,
                 poll_interval: float = 0.05, shutdown_grace: float = 10.0,
                 synchronous: str | None = None, clock: Clock | None = None,
                 queues: Iterable[Queue] = (), limits: Iterable[Limit] = (),
                 labels: dict[str, str] | None = None) -> None:
        self._options: dict[str, Any] = dict(
            workflows=workflows, worker=worker, table_prefix=table_prefix,
            concurrency=concurrency, lease=lease, heartbeat=heartbeat, park_after=park_after,
            poll_interval=poll_interval, shutdown_grace=shutdown_grace,
            synchronous=synchronous, clock=clock, queues=queues, limits=limits,
            labels=labels)
        self.url = url
        self.workflows = _registry(workflows)
        #: the queues and limits this engine knows (declared, and its workflows' queues)
        self.flow = _flow_registry(queues, limits, self.workflows)
        #: the labels this worker advertises for routing (``requires`` of runs)
        self.labels = labels_of(labels)
        validate.count(concurrency, "concurrency")
        lease = validate.seconds(lease, "lease")
        park_after = validate.seconds(park_after, "park_after")
        poll_interval = validate.seconds(poll_interval, "poll_interval")
        heartbeat = validate.seconds(lease / 4 if heartbeat is None else heartbeat, "heartbeat")
        if heartbeat >= lease:
            raise InvalidConfiguration("heartbeat must be shorter than the lease")
        shutdown_grace = validate.seconds(shutdown_grace, "shutdown_grace", zero=True)
        self.store: Storage = storage_for_url(url, prefix=table_prefix, synchronous=synchronous)
        given = clock or SystemClock()
        # A wall clock is corrected to the database's (measured at open); a virtual clock is
        # the reference itself, since a test moves it on purpose (time skipping).
        self.clock: Clock = given if is_authoritative(given) else CorrectedClock(given)
        self._clock_sync: ClockSync | None = None
        self.is_worker = worker
        self.concurrency = concurrency
        self.lease = lease
        self.heartbeat = heartbeat
        self.park_after = park_after
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.worker_id = Worker.new_id()
        #: the schema migrations the last ``open()`` applied (``NNNN_name``)
        self.migrations_applied: list[str] = []
        self._worker: Worker | None = None
        self._open = False
        self._settled: dict[str, tuple[asyncio.Event, int]] = {}
        #: reading events and streams, requests and callbacks (what handles use)
        self.talk = Talk(self.store, self.clock, poll_interval=poll_interval,
                         check_open=self._check_open, wake_run=self._wake_run)

    @property
    def safe_url(self) -> str:
        """The database URL with any password hidden, fit for a message or a log line."""
        return redact(self.url)

    def with_url(self, url: str) -> Engine:
        """A new engine with the same workflows and options on another database."""
        return Engine(url, **self._options)

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate, and (for a worker) start claiming runs.

        A worker waits for a database it cannot reach yet (containers often start before
        their database), retrying with a logged, capped exponential back-off; a client
        (``worker=False``, or no workflows) raises ``StorageUnavailable`` at once.
        ``migrations_applied`` then names the schema migrations this call applied.
        """
        if self._open:
            return
        self.migrations_applied = await self._connect()
        if self.migrations_applied:
            log.info("applied migration(s) %s to %s", ", ".join(self.migrations_applied),
                     redact(self.url))
        if isinstance(self.clock, CorrectedClock):
            # Before anything reads the time: a claim, a heartbeat, a run's start. A worker
            # re-measures at least as often as it renews leases, so a clock that jumps (a host
            # resumed from a suspend) writes wrong lease times for one heartbeat at most.
            every = min(SYNC_EVERY, self.heartbeat) if self.is_worker else SYNC_EVERY
            self._clock_sync = ClockSync(self.clock, self.store, every=every)
            try:
                await self._clock_sync.start()
            except BaseException:
                await self.store.close()
                raise
        try:
            await self.flow.define_all(self.store, self.clock.time())
        except BaseException:
            await self._stop_clock_sync()
            await self.store.close()
            raise
        self._open = True
        if self.is_worker and self.workflows:
            runner = Runner(store=self.store, clock=self.clock, worker=self.worker_id,
                            workflows=self.workflows, park_after=self.park_after,
                            on_settled=self._on_settled, notify=self._wake_worker,
                            on_published=self.talk.bell.ring, flow=self.flow)
            self._worker = Worker(
                store=self.store, clock=self.clock, runner=runner,
                keys=[wf_key(w.name, w.version) for w in self.workflows.values()],
                concurrency=self.concurrency, lease=self.lease, heartbeat=self.heartbeat,
                poll_interval=self.poll_interval, worker_id=self.worker_id,
                queues=list(self.flow.queues), caps=capabilities(self.labels))
            await self._worker.start()

    async def _connect(self) -> list[str]:
        delay = _CONNECT_RETRY_FIRST
        while True:
            try:
                return await self.store.open()
            except StorageUnavailable as exc:
                if not (self.is_worker and self.workflows):
                    raise
                # Real time, not self.clock: an injected clock must not stall the start.
                log.warning("waiting for the database: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _CONNECT_RETRY_MAX)

    async def close(self, grace: float | None = None) -> None:
        """Drain (stop claiming, let in-flight runs finish for ``grace`` seconds, hand the
        rest back to other workers) and disconnect."""
        grace = self.shutdown_grace if grace is None else validate.seconds(grace, "grace",
                                                                            zero=True)
        if not self._open:
            return
        if self._worker is not None:
            await self._worker.drain(grace)
            self._worker = None
        await self._stop_clock_sync()
        self._open = False
        await self.talk.close()
        await self.store.close()

    aclose = close

    async def abort(self) -> None:
        """Stop at once, as a crash would (for tests and harnesses): every run is abandoned
        where it is and nothing new is written; writes already queued to the storage may
        still commit, just as they might before a real crash."""
        if self._worker is not None:
            await self._worker.abort()
            self._worker = None
        await self._stop_clock_sync()
        self._open = False
        await self.talk.close()
        await self.store.close()

    async def _stop_clock_sync(self) -> None:
        if self._clock_sync is not None:
            await self._clock_sync.stop()
            self._clock_sync = None

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- runs -------------------------------------------------------------------------------

    async def start(self, wf: Workflow[Any, R] | str, *args: Any, id: str | None = None,
                    deadline: datetime | timedelta | None = None,
                    queue: Queue | str | None = None, key: str | None = None,
                    priority: int | None = None, delay: timedelta | float | None = None,
                    requires: dict[str, str] | None = None,
                    debounce: timedelta | float | None = None,
                    **kwargs: Any) -> WorkflowHandle[R]:
        """Start a run of ``wf`` with these arguments, or return the existing run ``id``.

        Starting is idempotent by ``id``: a second start with the same id (from any process)
        returns a handle to the first run and never executes it twice. Raises
        ``UnknownWorkflowError`` for a workflow this engine does not have, ``SerializationError``
        for an argument that cannot be encoded (nothing is written then) and ``TypeError`` for
        arguments that do not fit the workflow's signature. Past ``deadline`` (an aware
        datetime, or a timedelta from now) the run is cancelled.

        Flow control (``InvalidConfiguration`` for a bad value, before anything is written):
        ``queue`` (default: the workflow's) puts the run in a queue's line under its limits;
        ``key`` is its partition key (per-key concurrency, fairness, debounce); ``priority``
        orders it in its queue (lower first); it is not claimed before ``delay`` has passed;
        ``requires`` (default: the workflow's) names the labels a worker needs to take it
        (``"*"``: any value); with ``debounce`` (and a ``key``), starts of the same workflow
        and key within the window coalesce into one run that starts, with the latest
        arguments, once no start came for the window — every caller gets its handle.
        (These names are taken: pass workflow parameters so named by position.)
        """
        self._check_open()
        definition = self._lookup(wf)
        run_id = _check_id(id) if id is not None else str(uuid.uuid4())
        now = self.clock.time()
        flow = plan(self.flow, default_queue=definition.queue,
                    default_requires=definition.requires, queue=queue, key=key,
                    priority=priority, delay=delay, requires=requires, debounce=debounce,
                    explicit_id=id is not None, now=now)
        text = definition.codec.encode_args(args, kwargs)
        run = NewRun(run_id, definition.name, definition.version, text, now,
                     deadline=_deadline(deadline, now), status=flow.status,
                     wake_at=flow.wake_at, reason=flow.reason, queue=flow.queue, key=flow.key,
                     priority=flow.priority, share=flow.share, requires=flow.requires)
        if flow.debounce:
            run_id = await self.store.create_debounced(run)
            created = True
        else:
            created = await self.store.create_run(run)
        if created:
            if self._worker is not None:
                self._worker.wake.set()
        else:
            row = await self.store.get_run(run_id)
            if row is not None and row.workflow != definition.name:
                raise PerdureError(f"run id {run_id!r} is already used by a run of workflow "
                                   f"{row.workflow!r}, not {definition.name!r}")
        return WorkflowHandle(self, run_id)

    def handle(self, run_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing run (no I/O: methods raise ``RunNotFound`` if it is not)."""
        return WorkflowHandle(self, _check_id(run_id))

    async def status(self, run_id: str) -> RunInfo:
        """The run's status."""
        return await self.handle(run_id).status()

    async def journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal."""
        return await self.handle(run_id).journal()

    async def history(self, run_id: str) -> list[ResumeRecord]:
        """The run's resumes and what each superseded; see ``WorkflowHandle.history``."""
        return await self.handle(run_id).history()

    async def signal(self, run_id: str, name: str, payload: Any = None, *,
                     idempotency_key: str | None = None) -> bool:
        """Send signal ``name`` with ``payload`` to a run; it is buffered until the run waits.

        Returns False when ``idempotency_key`` was already used for this run (a retried send
        is a no-op). Raises ``RunNotFound``, ``RunFinished`` (the run already ended),
        ``SerializationError`` (payload) and ``InvalidConfiguration`` (name, key).
        """
        self._check_open()
        _check_id(run_id)
        validate.name(name, "a signal name")
        if idempotency_key is not None:
            validate.name(idempotency_key, "an idempotency key")
        text = codec.dumps(payload)
        outcome = await self.store.send_signal(run_id, name, text, idempotency_key,
                                               self.clock.time())
        if outcome == "missing":
            raise RunNotFound(run_id)
        if outcome not in ("sent", "duplicate"):
            raise RunFinished(run_id, outcome)
        if self._worker is not None:
            if run_id in self._worker.runner.contexts:
                self._worker.runner.poke(run_id)  # held in memory: it re-checks at once
            else:
                self._worker.wake.set()  # parked: the send made it claimable
        return outcome == "sent"

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run (durably): ``Cancelled`` is raised in it at its current durable await,
        it may run cleanup steps, then the completed steps are compensated; its children are
        cancelled too. Returns False, changing nothing, if the run had already finished."""
        self._check_open()
        _check_id(run_id)
        flagged = await self.store.request_cancel(run_id, self.clock.time())
        if not flagged:
            if await self.store.get_run(run_id) is None:
                raise RunNotFound(run_id)
            return False
        # Waiting in a queue's line, it would wait for a slot only to be told: end it now.
        error = run_error(ErrorInfo.from_exception(
            Cancelled("the run was cancelled before it started")))
        if await self.store.cancel_unstarted(run_id, error=error, now=self.clock.time()):
            self._on_settled(run_id)
        if self._worker is not None:
            for rid in flagged:
                self._worker.runner.request_cancel(rid)
            self._worker.wake.set()
        return True

    async def complete_callback(self, token: str, value: Any = None) -> None:
        """Complete the callback ``token`` (``cb.token`` in the workflow) with ``value``: the
        run's ``await cb.wait()`` returns it. Works from any process, once per token.

        Raises ``CallbackNotFound`` (no such token), ``CallbackAlreadyCompleted`` (completed
        or failed before: tokens are single-use), ``RunFinished`` (its run ended) and
        ``SerializationError`` (value); nothing is written then.
        """
        await self.talk.complete_callback(token, value=value)

    async def fail_callback(self, token: str, error: BaseException | str) -> None:
        """Fail the callback ``token``: the run's ``await cb.wait()`` raises
        ``CallbackFailed`` carrying ``error``'s type and message. Errors as
        :meth:`complete_callback`."""
        await self.talk.complete_callback(token, error=error)

    async def list_runs(self, *, status: RunStatus | str | None = None,
                        workflow: str | None = None, parent_id: str | None = None,
                        limit: int = 100, queue: str | None = None) -> list[RunInfo]:
        """Runs, newest first, optionally filtered; at most ``limit`` (a positive int)."""
        self._check_open()
        validate.count(limit, "limit")
        if workflow is not None:
            validate.name(workflow, "the workflow filter")
        if queue is not None:
            validate.name(queue, "the queue filter")
        if parent_id is not None:
            validate.name(parent_id, "the parent run id filter")
        if status is not None:
            try:
                status = RunStatus(status)
            except ValueError:
                raise InvalidConfiguration(
                    f"unknown status {status!r}; one of {', '.join(s.value for s in RunStatus)}"
                ) from None
        rows = await self.store.list_runs(status=status, workflow=workflow,
                                          parent_id=parent_id, limit=limit, queue=queue)
        return [RunInfo.from_row(r) for r in rows]

    async def resume(self, run_id: str) -> WorkflowHandle[Any]:
        """Re-drive a blocked or failed run after a fix.

        A blocked run replays from its journal. A failed run starts a new generation: it
        re-executes from its first failed step, and every step whose compensation ran executes
        again, under new idempotency keys (``step_key()`` gets a ``:gN`` suffix, so a provider
        that deduplicates by key does not answer with the refunded charge); completed steps
        without a compensation keep their journaled results. Either way how the run had ended
        and the journal entries the resume superseded stay in ``history()``.
        """
        self._check_open()
        row = await self.store.get_run(_check_id(run_id))
        if row is None:
            raise RunNotFound(run_id)
        status = RunStatus(row.status)
        if status not in (RunStatus.BLOCKED, RunStatus.FAILED):
            raise PerdureError(f"run {run_id!r} is {status}; only blocked or failed runs can "
                               "be resumed")
        redo: list[int] = []
        if status is RunStatus.FAILED:
            redo = _entries_to_redo(await self.store.load_journal(run_id))
        moved = await self.store.admin_transition(
            run_id, from_status=status, to_status=RunStatus.PENDING, supersede=redo,
            new_generation=status is RunStatus.FAILED, now=self.clock.time())
        if not moved:
            raise PerdureError(f"run {run_id!r} changed while resuming it; look again")
        if self._worker is not None:
            self._worker.wake.set()
        return WorkflowHandle(self, run_id)

    async def queues(self) -> FlowReport:
        """Every queue (depth, running, parked on a limit, the oldest wait, runs no live
        worker can take), runs routed without a queue, and every limit (slots in use, grants
        in the window, runs parked on it), as the database holds them now."""
        self._check_open()
        now = self.clock.time()
        return FlowReport.from_stats(await self.store.flow_stats(now, now - LIVE_WINDOW), now)

    # -- internals used by handles and the worker -------------------------------------------

    async def unroutable(self, row: RunRow) -> bool:
        """Whether no live worker's labels admit the routing selector of a run not started
        yet (a worker is live if it beat in the last ``LIVE_WINDOW`` seconds)."""
        if not row.requires or row.status not in (RunStatus.PENDING, RunStatus.WAITING):
            return False
        now = self.clock.time()
        return not await self.store.routable(row.requires, now - LIVE_WINDOW)

    def codec_for(self, workflow: str) -> FunctionCodec:
        """The codec of a registered workflow (or a generic one for others)."""
        wf = self.workflows.get(workflow)
        return wf.codec if wf is not None else _ANY_CODEC

    @contextlib.contextmanager
    def settled_event(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever this process settles ``run_id`` (finish, park, block)."""
        event, users = self._settled.get(run_id, (asyncio.Event(), 0))
        self._settled[run_id] = (event, users + 1)
        try:
            yield event
        finally:
            event, users = self._settled[run_id]
            if users <= 1:
                del self._settled[run_id]
            else:
                self._settled[run_id] = (event, users - 1)

    def _on_settled(self, run_id: str, parent: str | None = None) -> None:
        self.talk.bell.ring(run_id)  # its readers: a stream ends when the run does
        for rid in (run_id, parent):
            waiter = self._settled.get(rid) if rid is not None else None
            if waiter is not None:
                waiter[0].set()
        self._wake_worker()

    def _wake_run(self, run_id: str) -> None:
        """Something the run may wait for was written (a request, a callback's completion)."""
        if self._worker is not None:
            if run_id in self._worker.runner.contexts:
                self._worker.runner.poke(run_id)  # held in memory: it re-checks at once
            else:
                self._worker.wake.set()  # parked: the write made it claimable

    def _wake_worker(self) -> None:
        if self._worker is not None:
            self._worker.wake.set()

    def _lookup(self, wf: Workflow[Any, R] | str) -> Workflow[Any, R]:
        name = wf if isinstance(wf, str) else getattr(wf, "name", None)
        found = self.workflows.get(name) if isinstance(name, str) else None
        if found is None or (not isinstance(wf, str) and found is not wf):
            known = ", ".join(sorted(self.workflows)) or "none"
            what = repr(wf) if isinstance(wf, str | Workflow) else f"{wf!r} (not a @workflow)"
            raise UnknownWorkflowError(
                f"workflow {what} is not registered on this engine (registered: {known}); "
                "pass it in Engine(..., workflows=[...])")
        return found

    def _check_open(self) -> None:
        if not self._open:
            raise PerdureError("the engine is not open: use 'async with Engine(...)' or "
                               "'await engine.open()'")

    def __repr__(self) -> str:
        return f"<Engine {redact(self.url)!r} workflows={sorted(self.workflows)}>"


def _registry(workflows: Iterable[Workflow[Any, Any]]) -> dict[str, Workflow[Any, Any]]:
    if isinstance(workflows, Workflow):
        workflows = [workflows]
    registry: dict[str, Workflow[Any, Any]] = {}
    for wf in workflows:
        if not isinstance(wf, Workflow):
            raise InvalidConfiguration(f"{wf!r} is not a workflow: decorate it with @workflow")
        if wf.name in registry and registry[wf.name] is not wf:
            raise InvalidConfiguration(
                f"two workflows are named {wf.name!r}; give one a distinct name with "
                "@workflow(name=...)")
        registry[wf.name] = wf
    return registry


def _flow_registry(queues: Iterable[Queue], limits: Iterable[Limit],
                   workflows: dict[str, Workflow[Any, Any]]) -> FlowRegistry:
    """The engine's queues and limits: those declared, plus its workflows' default queues (a
    queue named by a workflow must be declared)."""
    registry = FlowRegistry(queues, limits)
    for wf in workflows.values():
        if isinstance(wf.queue, Queue):
            registry.add_queue(wf.queue, f"workflow {wf.name!r}")
    for wf in workflows.values():
        if isinstance(wf.queue, str):
            registry.queue(wf.queue, f"workflow {wf.name!r}")
    return registry


def _deadline(deadline: datetime | timedelta | None, now: float) -> float | None:
    if deadline is None:
        return None
    if isinstance(deadline, timedelta):
        return now + validate.seconds(deadline, "deadline", negative=True, timedeltas=True)
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None or deadline.utcoffset() is None:
            raise InvalidConfiguration("a deadline must be an aware datetime (with a tzinfo)")
        return deadline.timestamp()
    raise InvalidConfiguration(f"a deadline must be a datetime or a timedelta, not "
                               f"{type(deadline).__name__}")


def _check_id(run_id: object) -> str:
    return validate.name(run_id, "a run id", max_length=255)


def _entries_to_redo(journal: list[JournalEntry]) -> list[int]:
    """Journal entries a resumed failed run must execute again: everything from its first
    failed step on, every compensation, and every step a compensation undid."""
    first_failed = min((e.seq for e in journal if e.kind == "step" and e.status == "failed"),
                       default=None)
    drop = {e.seq for e in journal
            if e.kind == "compensation" or (first_failed is not None and e.seq >= first_failed)}
    for e in journal:
        if e.kind == "compensation" and e.status == "completed" and e.output:
            undone = json.loads(e.output).get("compensated")
            if isinstance(undone, int):
                drop.add(undone)
    return sorted(drop)
