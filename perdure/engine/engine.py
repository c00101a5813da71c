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

from perdure.clock import Clock, SystemClock
from perdure.codec import functions as codec
from perdure.codec.functions import FunctionCodec
from perdure.engine.handle import WorkflowHandle
from perdure.engine.outbox import Outbox
from perdure.engine.publisher import DEFAULT_RETRY, Publisher, Sink, check_sink
from perdure.engine.runner import Runner
from perdure.engine.worker import Worker
from perdure.errors import (
    InvalidConfiguration,
    PerdureError,
    RunFinished,
    RunNotFound,
    UnknownWorkflowError,
)
from perdure.records import JournalEntry, RunInfo, RunStatus
from perdure.retry import RetryPolicy
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

    Outbox: ``outbox`` is the sink that delivers the events workflows emit (``perdure.emit``):
    an async callable taking an ``OutboxEvent`` (or ``perdure.WebhookSink``), called by one
    publisher at a time across every process on the database, in emit order per key, at
    least once; ``outbox_retry`` (a ``RetryPolicy``; 10 attempts over about 15 minutes by
    default) says how often and how far apart a failing event is retried before it moves to
    the dead letters; ``outbox_timeout`` bounds one delivery attempt (seconds). A client
    (``worker=False``) does not publish; an engine with a sink and no workflows only
    publishes. The events, the dead letters and their counts are on ``engine.outbox``.
    """

    def __init__(self, url: str = "sqlite:///perdure.db", *,
                 workflows: Iterable[Workflow[Any, Any]] = (), worker: bool = True,
                 table_prefix: str = "perdure_", concurrency: int = 100, lease: float = 10.0,
                 heartbeat: float | None = None, park_after: float = 5.0,
                 poll_interval: float = 0.05, shutdown_grace: float = 10.0,
                 synchronous: str | None = None, clock: Clock | None = None,
                 outbox: Sink | None = None, outbox_retry: RetryPolicy | None = None,
                 outbox_timeout: float = 30.0) -> None:
        self._options: dict[str, Any] = dict(
            workflows=workflows, worker=worker, table_prefix=table_prefix,
            concurrency=concurrency, lease=lease, heartbeat=heartbeat, park_after=park_after,
            poll_interval=poll_interval, shutdown_grace=shutdown_grace,
            synchronous=synchronous, clock=clock, outbox=outbox, outbox_retry=outbox_retry,
            outbox_timeout=outbox_timeout)
        self.url = url
        self.workflows = _registry(workflows)
        _positive("concurrency", concurrency, integer=True)
        _positive("lease", lease)
        _positive("park_after", park_after)
        _positive("poll_interval", poll_interval)
        if heartbeat is None:
            heartbeat = lease / 4
        _positive("heartbeat", heartbeat)
        if heartbeat >= lease:
            raise InvalidConfiguration("heartbeat must be shorter than the lease")
        if shutdown_grace < 0:
            raise InvalidConfiguration("shutdown_grace must not be negative")
        self._sink = None if outbox is None else check_sink(outbox)
        if outbox_retry is not None and not isinstance(outbox_retry, RetryPolicy):
            raise InvalidConfiguration(f"outbox_retry must be a RetryPolicy, not "
                                       f"{type(outbox_retry).__name__}")
        self._outbox_retry = outbox_retry or DEFAULT_RETRY
        _positive("outbox_timeout", outbox_timeout)
        self._outbox_timeout = float(outbox_timeout)
        self.store: Storage = storage_for_url(url, prefix=table_prefix, synchronous=synchronous)
        self.clock: Clock = clock or SystemClock()
        self.is_worker = worker
        self.concurrency = concurrency
        self.lease = lease
        self.heartbeat = heartbeat
        self.park_after = park_after
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.worker_id = Worker.new_id()
        self._worker: Worker | None = None
        self._open = False
        self._settled: dict[str, tuple[asyncio.Event, int]] = {}
        self._publisher: Publisher | None = None
        #: the outbox's events and dead letters (``perdure.emit``; delivered by ``outbox=``)
        self.outbox = Outbox(self)

    def with_url(self, url: str) -> Engine:
        """A new engine with the same workflows and options on another database."""
        return Engine(url, **self._options)

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate, and (for a worker) start claiming runs."""
        if self._open:
            return
        await self.store.open()
        self._open = True
        if self.is_worker and self.workflows:
            runner = Runner(store=self.store, clock=self.clock, worker=self.worker_id,
                            workflows=self.workflows, park_after=self.park_after,
                            on_settled=self._on_settled, notify=self._wake_worker)
            self._worker = Worker(
                store=self.store, clock=self.clock, runner=runner,
                keys=[wf_key(w.name, w.version) for w in self.workflows.values()],
                concurrency=self.concurrency, lease=self.lease, heartbeat=self.heartbeat,
                poll_interval=self.poll_interval, worker_id=self.worker_id)
            await self._worker.start()
        if self.is_worker and self._sink is not None:
            sink, is_async = self._sink
            self._publisher = Publisher(
                store=self.store, clock=self.clock, sink=sink, is_async=is_async,
                worker_id=self.worker_id, retry=self._outbox_retry, lease=self.lease,
                heartbeat=self.heartbeat, poll_interval=self.poll_interval,
                timeout=self._outbox_timeout, register=self._worker is None)
            await self._publisher.start()

    async def close(self, grace: float | None = None) -> None:
        """Drain (stop claiming, let in-flight runs finish for ``grace`` seconds, hand the
        rest back to other workers) and disconnect."""
        if not self._open:
            return
        if self._publisher is not None:
            await self._publisher.stop(self.shutdown_grace if grace is None else grace)
            self._publisher = None
        if self._worker is not None:
            await self._worker.drain(self.shutdown_grace if grace is None else grace)
            self._worker = None
        self._open = False
        await self.store.close()

    aclose = close

    async def abort(self) -> None:
        """Stop at once, as a crash would (for tests and harnesses): every run is abandoned
        where it is and nothing new is written; writes already queued to the storage may
        still commit, just as they might before a real crash."""
        if self._publisher is not None:
            await self._publisher.abort()
            self._publisher = None
        if self._worker is not None:
            await self._worker.abort()
            self._worker = None
        self._open = False
        await self.store.close()

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- runs -------------------------------------------------------------------------------

    async def start(self, wf: Workflow[Any, R] | str, *args: Any, id: str | None = None,
                    deadline: datetime | timedelta | None = None,
                    **kwargs: Any) -> WorkflowHandle[R]:
        """Start a run of ``wf`` with these arguments, or return the existing run ``id``.

        Starting is idempotent by ``id``: a second start with the same id (from any process)
        returns a handle to the first run and never executes it twice. Raises
        ``UnknownWorkflowError`` for a workflow this engine does not have, ``SerializationError``
        for an argument that cannot be encoded (nothing is written then) and ``TypeError`` for
        arguments that do not fit the workflow's signature. Past ``deadline`` (an aware
        datetime, or a timedelta from now) the run is cancelled.
        """
        self._check_open()
        definition = self._lookup(wf)
        run_id = _check_id(id) if id is not None else str(uuid.uuid4())
        text = definition.codec.encode_args(args, kwargs)
        now = self.clock.time()
        created = await self.store.create_run(NewRun(
            run_id, definition.name, definition.version, text, now,
            deadline=_deadline(deadline, now)))
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

    async def signal(self, run_id: str, name: str, payload: Any = None, *,
                     idempotency_key: str | None = None) -> bool:
        """Send signal ``name`` with ``payload`` to a run; it is buffered until the run waits.

        Returns False when ``idempotency_key`` was already used for this run (a retried send
        is a no-op). Raises ``RunNotFound``, ``RunFinished`` (the run already ended),
        ``SerializationError`` (payload) and ``InvalidConfiguration`` (name, key).
        """
        self._check_open()
        _check_id(run_id)
        if not isinstance(name, str) or not name:
            raise InvalidConfiguration(f"a signal name must be a non-empty string, not {name!r}")
        if idempotency_key is not None and (not isinstance(idempotency_key, str)
                                            or not idempotency_key):
            raise InvalidConfiguration("an idempotency key must be a non-empty string")
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
        if self._worker is not None:
            for rid in flagged:
                self._worker.runner.request_cancel(rid)
            self._worker.wake.set()
        return True

    async def list_runs(self, *, status: RunStatus | str | None = None,
                        workflow: str | None = None, parent_id: str | None = None,
                        limit: int = 100) -> list[RunInfo]:
        """Runs, newest first, optionally filtered."""
        self._check_open()
        if status is not None:
            try:
                status = RunStatus(status)
            except ValueError:
                raise InvalidConfiguration(
                    f"unknown status {status!r}; one of {', '.join(s.value for s in RunStatus)}"
                ) from None
        rows = await self.store.list_runs(status=status, workflow=workflow,
                                          parent_id=parent_id, limit=limit)
        return [RunInfo.from_row(r) for r in rows]

    async def resume(self, run_id: str) -> WorkflowHandle[Any]:
        """Re-drive a blocked or failed run after a fix.

        A blocked run replays from its journal. A failed run re-executes from its first failed
        step, and every step whose compensation ran executes again; completed steps without a
        compensation keep their journaled results.
        """
        self._check_open()
        row = await self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        status = RunStatus(row.status)
        if status not in (RunStatus.BLOCKED, RunStatus.FAILED):
            raise PerdureError(f"run {run_id!r} is {status}; only blocked or failed runs can "
                               "be resumed")
        drop: list[int] = []
        if status is RunStatus.FAILED:
            drop = _entries_to_redo(await self.store.load_journal(run_id))
        moved = await self.store.admin_transition(
            run_id, from_status=status, to_status=RunStatus.PENDING, drop_seqs=drop,
            now=self.clock.time())
        if not moved:
            raise PerdureError(f"run {run_id!r} changed while resuming it; look again")
        if self._worker is not None:
            self._worker.wake.set()
        return WorkflowHandle(self, run_id)

    # -- internals used by handles and the worker -------------------------------------------

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
        for rid in (run_id, parent):
            waiter = self._settled.get(rid) if rid is not None else None
            if waiter is not None:
                waiter[0].set()
        self._wake_worker()

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


def _positive(name: str, value: object, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise InvalidConfiguration(f"{name} must be a positive {'int' if integer else 'number'},"
                                   f" not {value!r}")


def _deadline(deadline: datetime | timedelta | None, now: float) -> float | None:
    if deadline is None:
        return None
    if isinstance(deadline, timedelta):
        return now + deadline.total_seconds()
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None or deadline.utcoffset() is None:
            raise InvalidConfiguration("a deadline must be an aware datetime (with a tzinfo)")
        return deadline.timestamp()
    raise InvalidConfiguration(f"a deadline must be a datetime or a timedelta, not "
                               f"{type(deadline).__name__}")


def _check_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 255:
        raise InvalidConfiguration(f"a run id must be a non-empty string of at most 255 "
                                   f"characters, not {run_id!r}")
    return run_id


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
