"""The engine: the one composition root that wires storage, clock, runner and worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from perdure import validate
from perdure.clock import Clock, CorrectedClock, SystemClock, is_authoritative
from perdure.codec import functions as codec
from perdure.codec.envelope import PayloadCodec
from perdure.codec.functions import FunctionCodec
from perdure.codec.limits import DEFAULT_MAX_PAYLOAD, DEFAULT_OFFLOAD_ABOVE, positive_size
from perdure.engine import serverless
from perdure.engine.clocksync import SYNC_EVERY, ClockSync
from perdure.engine.handle import WorkflowHandle
from perdure.engine.lifecycle import RunLifecycle
from perdure.engine.listing import RunFilter, encode_cursor
from perdure.engine.outbox import Outbox
from perdure.engine.overview import Overview
from perdure.engine.publisher import DEFAULT_RETRY, Publisher, Sink, check_sink
from perdure.engine.runner import Runner
from perdure.engine.scheduler import Scheduler
from perdure.engine.schedules import Schedules
from perdure.engine.talk import Talk
from perdure.engine.worker import Worker
from perdure.errors import (
    InvalidConfiguration,
    PerdureError,
    RunFinished,
    RunNotFound,
    StorageUnavailable,
    UnknownWorkflowError,
)
from perdure.observe.health import Readiness
from perdure.observe.observer import Observer
from perdure.observe.retention import FINISHED, Pruner, cutoffs, retention_policy
from perdure.records import JournalEntry, ResumeRecord, RunInfo, RunPage, RunStatus
from perdure.retry import RetryPolicy
from perdure.storage.blobs import BlobStore
from perdure.storage.factory import storage_for_url
from perdure.storage.port import NewRun, Storage, wf_key
from perdure.storage.urls import redact
from perdure.workflow.definitions import Workflow
from perdure.workflow.payloads import Payloads
from perdure.workflow.registry import Registry

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from perdure.observe.metrics import Metrics

__all__ = ["Engine"]

R = TypeVar("R")
log = logging.getLogger("perdure.engine")


def _any_result() -> Any:
    return None


_ANY_CODEC = FunctionCodec(_any_result)

# A worker waiting for its database at start-up retries after these many seconds, doubling.
_CONNECT_RETRY_FIRST = 0.25
_CONNECT_RETRY_MAX = 10.0


class Engine(RunLifecycle, Overview):
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

    Observability: lifecycle logs go to the ``perdure.runs`` logger. ``tracing=True`` makes
    OpenTelemetry spans with the global tracer provider (or pass a ``TracerProvider``), and
    ``start`` stores the caller's trace context with the run, so its executions on any worker
    continue that trace (extra ``perdure[otel]``). ``metrics=True`` keeps Prometheus metrics in
    a registry of the engine's own, ``engine.metrics.registry`` (or pass a
    ``CollectorRegistry``, such as ``prometheus_client.REGISTRY``) (extra
    ``perdure[metrics]``). ``readiness()`` says whether the engine is ready for work.

    ``retention`` (a ``timedelta``, ``"30d"``, or a mapping of finished status to age) makes a
    worker prune finished runs older than that in the background, one worker of the fleet at
    a time (see :meth:`prune`). ``create=False`` refuses to create a SQLite file that does not
    exist (``InvalidConfiguration``) instead of creating an empty database.

    Time shared between workers (leases, due times, deadlines) is the database's: the engine
    measures its clock's offset to the database's clock when it opens and every 10 s after (a
    worker: every heartbeat, if that is shorter), and works in corrected time, warning when
    the offset exceeds a second. A clock
    marked ``authoritative`` (a ``VirtualClock``) is used uncorrected.

    Payloads: ``max_payload`` (bytes of JSON, 2 MiB by default) bounds every argument, result
    and signal payload (``PayloadTooLarge`` at the call that made it); ``blobs`` (a
    :class:`~perdure.storage.blobs.BlobStore` such as ``perdure.DirectoryBlobs(path)``, or
    ``"database"`` for a table in this same database) keeps payloads longer than
    ``offload_above`` bytes (256 KiB by default) out of the journal, which holds their content
    hash instead; ``codec`` (``perdure.Encrypted(...)``, ``perdure.Compressed()`` or any
    :class:`~perdure.codec.envelope.PayloadCodec`) transforms every stored payload.

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
                 max_payload: int = DEFAULT_MAX_PAYLOAD, codec: PayloadCodec | None = None,
                 blobs: BlobStore | Literal["database"] | None = None,
                 offload_above: int | None = None,
                 tracing: bool | TracerProvider = False,
                 metrics: bool | CollectorRegistry = False,
                 outbox: Sink | None = None, outbox_retry: RetryPolicy | None = None,
                 outbox_timeout: float = 30.0,
                 retention: timedelta | str | Mapping[RunStatus | str, timedelta | str | None]
                 | None = None, create: bool = True) -> None:
        self._options: dict[str, Any] = dict(
            workflows=workflows, worker=worker, table_prefix=table_prefix,
            concurrency=concurrency, lease=lease, heartbeat=heartbeat, park_after=park_after,
            poll_interval=poll_interval, shutdown_grace=shutdown_grace,
            synchronous=synchronous, clock=clock, max_payload=max_payload, codec=codec,
            blobs=blobs, offload_above=offload_above, tracing=tracing, metrics=metrics,
            outbox=outbox, outbox_retry=outbox_retry, outbox_timeout=outbox_timeout,
            retention=retention, create=create)
        self.url = url
        self.workflows = Registry(workflows)
        validate.count(concurrency, "concurrency")
        lease = validate.seconds(lease, "lease")
        park_after = validate.seconds(park_after, "park_after")
        poll_interval = validate.seconds(poll_interval, "poll_interval")
        heartbeat = validate.seconds(lease / 4 if heartbeat is None else heartbeat, "heartbeat")
        if heartbeat >= lease:
            raise InvalidConfiguration("heartbeat must be shorter than the lease")
        shutdown_grace = validate.seconds(shutdown_grace, "shutdown_grace", zero=True)
        payload_options = _payload_options(max_payload, codec, blobs, offload_above)
        self._sink = None if outbox is None else check_sink(outbox)
        if outbox_retry is not None and not isinstance(outbox_retry, RetryPolicy):
            raise InvalidConfiguration(f"outbox_retry must be a RetryPolicy, not "
                                       f"{type(outbox_retry).__name__}")
        self._outbox_retry = outbox_retry or DEFAULT_RETRY
        self._outbox_timeout = validate.seconds(outbox_timeout, "outbox_timeout")
        #: seconds a finished run is kept, per status (empty: kept forever)
        self.retention = retention_policy(retention)
        self.store: Storage = storage_for_url(url, prefix=table_prefix, synchronous=synchronous,
                                              create=create)
        #: the payload pipeline: size limit, codec, blob offload
        self.payloads = Payloads(
            codec=codec, blobs=self.store.blobs() if blobs == "database" else blobs,
            **payload_options)
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
        self.observer = Observer.build(self.worker_id, tracing=tracing, metrics=metrics)
        #: Perdure's Prometheus metrics (``metrics=``), or None
        self.metrics: Metrics | None = self.observer.metrics
        self._untrack: list[Any] = []
        self._state = "not open yet"
        #: the schema migrations the last ``open()`` applied (``NNNN_name``)
        self.migrations_applied: list[str] = []
        self._worker: Worker | None = None
        self._pruner: Pruner | None = None
        self._open = False
        self._settled: dict[str, tuple[asyncio.Event, int]] = {}
        #: reading events and streams, requests and callbacks (what handles use)
        self.talk = Talk(self.store, self.clock, poll_interval=poll_interval,
                         check_open=self._check_open, wake_run=self._wake_run,
                         payloads=self.payloads)
        self._publisher: Publisher | None = None
        #: the outbox's events and dead letters (``perdure.emit``; delivered by ``outbox=``)
        self.outbox = Outbox(self)
        #: create, list, pause, resume, trigger, backfill and delete schedules (a worker of
        #: this engine also fires them)
        self.schedules = Schedules(self)

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
        self._state = "connecting to the database"
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
        self._open = True
        if self.is_worker and self.workflows:
            self._worker = worker = self._new_worker(self.worker_id)
            if self.metrics is not None:
                self._untrack.append(self.metrics.track_in_memory(lambda: len(worker.active)))
            await self._worker.start()
        if self.is_worker and self._sink is not None:
            sink, is_async = self._sink
            self._publisher = Publisher(
                store=self.store, clock=self.clock, sink=sink, is_async=is_async,
                worker_id=self.worker_id, retry=self._outbox_retry, lease=self.lease,
                heartbeat=self.heartbeat, poll_interval=self.poll_interval,
                timeout=self._outbox_timeout, register=self._worker is None)
            await self._publisher.start()

        if self.is_worker and self.retention:
            self._pruner = Pruner(store=self.store, clock=self.clock, policy=self.retention,
                                  owner=self.worker_id)
            self._pruner.start()

    def _new_worker(self, worker_id: str) -> Worker:
        """A worker (and its runner) for this engine's workflows, not started."""
        runner = Runner(store=self.store, clock=self.clock, worker=worker_id,
                        workflows=self.workflows, park_after=self.park_after,
                        on_settled=self._on_settled, notify=self._wake_worker,
                        on_published=self.talk.bell.ring,
                        payloads=self.payloads, observer=self.observer)
        return Worker(
            store=self.store, clock=self.clock, runner=runner,
            keys=[wf_key(name, version) for name, version in self.workflows.pairs()],
            concurrency=self.concurrency, lease=self.lease, heartbeat=self.heartbeat,
            poll_interval=self.poll_interval, worker_id=worker_id,
            scheduler=Scheduler(self.store, self.clock, on_cancel=self._cancel_flagged))

    async def _connect(self) -> list[str]:
        delay = _CONNECT_RETRY_FIRST
        while True:
            try:
                return await self.store.open()
            except StorageUnavailable as exc:
                if not (self.is_worker and self.workflows):
                    self._state = f"the database is unreachable: {exc}"
                    raise
                self._state = f"waiting for the database: {exc}"
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
        if self._publisher is not None:
            await self._publisher.stop(self.shutdown_grace if grace is None else grace)
            self._publisher = None
        await self._stop_pruner()
        if self._worker is not None:
            await self._worker.drain(grace)
            self._worker = None
        self._closed()
        await self._stop_clock_sync()
        self._open = False
        await self.talk.close()
        await self.store.close()

    aclose = close

    async def abort(self) -> None:
        """Stop at once, as a crash would (for tests and harnesses): every run is abandoned
        where it is and nothing new is written; writes already queued to the storage may
        still commit, just as they might before a real crash."""
        if self._publisher is not None:
            await self._publisher.abort()
            self._publisher = None
        await self._stop_pruner()
        if self._worker is not None:
            await self._worker.abort()
            self._worker = None
        self._closed()
        await self._stop_clock_sync()
        self._open = False
        await self.talk.close()
        await self.store.close()

    def _closed(self) -> None:
        self._state = "closed"
        for untrack in self._untrack:
            untrack()
        self._untrack.clear()

    def readiness(self) -> Readiness:
        """Whether this engine is ready for work, and why (not): open, and for a worker,
        claiming (not draining) with its last claim and heartbeat answered by the database.
        What ``perdure worker --health-port`` serves as ``/readyz``; truthy when ready."""
        if not self._open:
            return Readiness(False, self._state)
        worker = self._worker
        if worker is None:
            return Readiness(True, "open (a client: it claims no runs)")
        return worker.readiness()

    async def _stop_pruner(self) -> None:
        if self._pruner is not None:
            await self._pruner.stop()
            self._pruner = None

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
                    tags: Mapping[str, str] | None = None,
                    **kwargs: Any) -> WorkflowHandle[R]:
        """Start a run of ``wf`` with these arguments, or return the existing run ``id``.

        Starting is idempotent by ``id``: a second start with the same id (from any process)
        returns a handle to the first run and never executes it twice. Raises
        ``UnknownWorkflowError`` for a workflow this engine does not have, ``SerializationError``
        for an argument that cannot be encoded (nothing is written then) and ``TypeError`` for
        arguments that do not fit the workflow's signature. Past ``deadline`` (an aware
        datetime, or a timedelta from now) the run is cancelled. ``tags`` (text to text, at most
        32; see ``perdure.set_tags``) make the run findable with ``list_runs(tags=...)``; a
        start that finds the run already there keeps the first start's tags.
        """
        self._check_open()
        definition = self._lookup(wf)
        run_id = _check_id(id) if id is not None else str(uuid.uuid4())
        tag_pairs = () if tags is None else tuple(sorted(
            (k, v) for k, v in validate.tags(tags).items() if v is not None))
        text = definition.codec.encode_args(args, kwargs, limit=self.payloads.max_payload)
        text = await self.payloads.store(text, f"the arguments of workflow {definition.name!r}")
        now = self.clock.time()
        with self.observer.starting(definition.name, run_id) as watch:
            created = await self.store.create_run(NewRun(
                run_id, definition.name, definition.version, text, now,
                deadline=_deadline(deadline, now), trace_context=watch.trace_context,
                tags=tag_pairs))
            watch.done(created=created, version=definition.version)
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
        """The run's status (an error this engine cannot decrypt is left out and marked
        ``unreadable``)."""
        return await self.handle(run_id).status()

    async def journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal, payloads decoded (those this engine cannot read are left out and
        marked ``unreadable``)."""
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
        text = await self.payloads.store(codec.dumps(payload), f"the payload of signal {name!r}")
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

    async def list_runs(self, *, status: RunStatus | str | Iterable[RunStatus | str] | None = None,
                        workflow: str | None = None, version: str | None = None,
                        tags: Mapping[str, str] | None = None,
                        created_after: datetime | None = None,
                        created_before: datetime | None = None, parent: str | None = None,
                        limit: int = 100, cursor: str | None = None,
                        parent_id: str | None = None) -> RunPage:
        """One page of runs, newest first, that match every filter given.

        ``status`` (one or several), ``workflow``, ``version``, ``parent`` (the parent's run
        id; ``parent_id`` is its older name), ``tags`` (each of these tags, by equality; served
        by an index), ``created_after`` (inclusive) and ``created_before`` (exclusive, aware
        datetimes). At most ``limit`` runs (an int from 1). The page is a list of
        :class:`RunInfo` with ``next_cursor``: None when nothing follows, else pass it as
        ``cursor=`` with the same filters for the next page. Pages are keyset-paged: runs
        created while someone pages never make a run appear twice or be skipped. A bad filter
        raises ``InvalidConfiguration``, a cursor of another query ``InvalidCursor``.
        """
        self._check_open()
        validate.count(limit, "limit")
        where = self._filter(status, workflow, version, tags, created_after, created_before,
                             parent, parent_id)
        rows = await self.store.list_runs(where.query(limit=limit + 1, cursor=cursor))
        last = rows[limit - 1] if len(rows) > limit else None
        return RunPage([await self.payloads.run_info(r) for r in rows[:limit]],
                       None if last is None else encode_cursor(where, last.created_at,
                                                               last.id))

    async def count_runs(self, *, status: RunStatus | str | Iterable[RunStatus | str] |
                         None = None, workflow: str | None = None, version: str | None = None,
                         tags: Mapping[str, str] | None = None,
                         created_after: datetime | None = None,
                         created_before: datetime | None = None,
                         parent: str | None = None) -> int:
        """How many runs match the filters (those of :meth:`list_runs`)."""
        self._check_open()
        where = self._filter(status, workflow, version, tags, created_after, created_before,
                             parent, None)
        return await self.store.count_runs(where.query(limit=1))

    @staticmethod
    def _filter(status: object, workflow: object, version: object, tags: object,
                created_after: object, created_before: object, parent: object,
                parent_id: object) -> RunFilter:
        if parent is not None and parent_id is not None and parent != parent_id:
            raise InvalidConfiguration("give parent= or its older name parent_id=, not both")
        return RunFilter.of(status=status, workflow=workflow, version=version, tags=tags,
                            created_after=created_after, created_before=created_before,
                            parent=parent if parent is not None else parent_id)

    async def prune(self, older_than: timedelta | str, *,
                    status: RunStatus | str | Iterable[RunStatus | str] | None = None,
                    dry_run: bool = False, batch: int = 500) -> int:
        """Delete finished runs last updated more than ``older_than`` ago (a ``timedelta`` or
        ``"30d"``, ``"12h"``...), with their journals, history, signals and tags, in batches
        of ``batch`` runs; ``status`` narrows it to some finished statuses. Never a run that
        is not finished, nor one whose parent is not finished. Returns how many runs it
        deleted (with ``dry_run``: how many it would delete, deleting nothing)."""
        self._check_open()
        age = validate.age(older_than, "older_than").total_seconds()
        validate.count(batch, "batch")
        chosen = RunFilter.of(status=status).statuses or FINISHED
        unfinished = [s for s in chosen if s not in FINISHED]
        if unfinished:
            raise InvalidConfiguration(
                f"only finished runs are pruned ({', '.join(FINISHED)}), not "
                f"{', '.join(unfinished)}")
        limits = cutoffs(dict.fromkeys(chosen, age), self.clock.time())
        if dry_run:
            return await self.store.count_prunable(limits)
        total = 0
        while True:
            n = await self.store.prune_runs(limits, limit=batch)
            total += n
            if n < batch:
                return total
            await asyncio.sleep(0)  # let this process's claims and writes in between

    async def resume(self, run_id: str) -> WorkflowHandle[Any]:
        """Re-drive a blocked or failed run after a fix, or continue a paused one.

        A paused run (``pause``) becomes claimable again (a pause not yet reached is
        withdrawn). A blocked run replays from its journal. A failed run starts a new generation: it
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
        if status is RunStatus.PAUSED or (row.pause_requested and status in (
                RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)):
            return await self._unpause(run_id)
        if status not in (RunStatus.BLOCKED, RunStatus.FAILED):
            raise PerdureError(f"run {run_id!r} is {status}; only blocked or failed runs "
                               "(and paused ones) can be resumed")
        if row.pause_requested:  # resuming also withdraws a pause the run never reached
            await self.store.unpause(run_id, self.clock.time())
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

    # -- hosts that are not long-running processes (serverless, cron) -----------------------

    async def run_once(self, *, max_seconds: float,
                       max_runs: int | None = None) -> serverless.RunOnceSummary:
        """Drive runnable runs until none is left, ``max_seconds`` (real time) pass or
        ``max_runs`` were claimed; hand back the rest (claimable at once) and say what was
        done. For hosts where no process lives long (Lambda, a CronJob): open the engine with
        ``worker=False`` and call this once per invocation. ``InvalidConfiguration`` for a
        budget that is not a positive finite number, before touching the database."""
        budget = validate.seconds(max_seconds, "max_seconds")
        if max_runs is not None:
            validate.count(max_runs, "max_runs")
        async with self._on_demand() as worker:
            return await serverless.run_once(worker, max_runs=max_runs, max_seconds=budget)

    async def drive(self, run_id: str, *, max_seconds: float | None = None) -> RunInfo:
        """Drive the run ``run_id`` (named in a queue message) until it finishes or parks (or
        ``max_seconds`` pass: it is handed back); return its status. Idempotent: a run another
        invocation holds, that has ended or is not due is left alone. ``RunNotFound``, and
        ``UnknownWorkflowError`` for a workflow this engine lacks, with nothing written."""
        self._check_open()
        budget = None if max_seconds is None else validate.seconds(max_seconds, "max_seconds")
        row = await self.store.get_run(_check_id(run_id))
        if row is None:
            raise RunNotFound(run_id)
        self._lookup(row.workflow)
        async with self._on_demand() as worker:
            await serverless.drive_one(worker, run_id, max_seconds=budget)
        return await self.status(run_id)

    async def tick(self) -> serverless.TickSummary:
        """The maintenance a long-running worker does in the background, once: free the runs
        of dead workers and count the parked runs now due (see ``TickSummary``). For a cron
        job next to hosts that only ``drive`` runs pushed to them."""
        self._check_open()
        return await serverless.tick(self._new_worker(self.worker_id))

    @contextlib.asynccontextmanager
    async def _on_demand(self) -> AsyncIterator[Worker]:
        """A fresh worker for one invocation, wired as this engine's worker while it lasts
        (so a run it drives wakes it)."""
        self._check_open()
        if not self.workflows:
            raise InvalidConfiguration("this engine has no workflows to drive: pass "
                                       "Engine(..., workflows=[...])")
        if self._worker is not None:
            raise InvalidConfiguration(
                "this engine already drives runs (a background worker, or another run_once or "
                "drive in progress): open it with Engine(..., worker=False) to drive on demand")
        self._worker = worker = self._new_worker(Worker.new_id())
        try:
            yield worker
        finally:
            self._worker = None

    # -- internals used by handles and the worker -------------------------------------------

    def codec_for(self, workflow: str, version: str | None = None) -> FunctionCodec:
        """The codec of a registered workflow at ``version``; else of its default version (a
        client may know only the newest); a generic one for a workflow it does not have."""
        wf = None if version is None else self.workflows.version(workflow, version)
        wf = wf or self.workflows.get(workflow)
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

    def _cancel_flagged(self, run_ids: list[str]) -> None:
        """A schedule's firing flagged these runs for cancellation (``cancel_other``)."""
        if self._worker is not None:
            for rid in run_ids:
                self._worker.runner.request_cancel(rid)
            self._worker.wake.set()

    def _wake_worker(self) -> None:
        if self._worker is not None:
            self._worker.wake.set()

    def _lookup(self, wf: Workflow[Any, R] | str) -> Workflow[Any, R]:
        # A name starts its default version; a workflow object starts exactly that version.
        found: Workflow[Any, R] | None
        if isinstance(wf, str):
            found = self.workflows.get(wf)
        else:
            found = wf if self.workflows.has(wf) else None
        if found is None:
            known = self.workflows.describe()
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


def _payload_options(max_payload: object, codec: object, blobs: object,
                     offload_above: object) -> dict[str, int]:
    """Check the payload options; return the sizes for :class:`Payloads`."""
    limit = positive_size("max_payload", max_payload)
    if codec is not None and not isinstance(codec, PayloadCodec):
        raise InvalidConfiguration(
            f"codec must be a payload codec (perdure.Encrypted(...), perdure.Compressed() or "
            f"an object with encode and decode), not {codec!r}")
    if blobs is not None and blobs != "database" and not isinstance(blobs, BlobStore):
        raise InvalidConfiguration(
            f"blobs must be \"database\", a blob store (perdure.DirectoryBlobs(path), or an "
            f"object with put, get, delete and exists) or None, not {blobs!r}")
    if offload_above is None:
        offload = DEFAULT_OFFLOAD_ABOVE
    else:
        offload = positive_size("offload_above", offload_above)
        if blobs is None:
            raise InvalidConfiguration("offload_above needs a blob store to offload to: pass "
                                       "Engine(blobs=...) as well")
    if blobs is not None and offload >= limit:
        raise InvalidConfiguration(
            f"offload_above ({offload:,}) must be below max_payload ({limit:,}), or nothing "
            "would ever be offloaded: lower offload_above or raise max_payload")
    return {"max_payload": limit, "offload_above": offload}



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
