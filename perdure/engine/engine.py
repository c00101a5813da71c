"""The engine: the one composition root that wires storage, clock, runner and worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from perdure import validate
from perdure.clock import Clock, CorrectedClock, SystemClock, is_authoritative
from perdure.codec import functions as codec
from perdure.codec.envelope import PayloadCodec
from perdure.codec.functions import FunctionCodec
from perdure.codec.limits import DEFAULT_MAX_PAYLOAD
from perdure.engine.clocksync import SYNC_EVERY, ClockSync
from perdure.engine.finding import RunFinding
from perdure.engine.handle import WorkflowHandle
from perdure.engine.lifecycle import RunLifecycle
from perdure.engine.ondemand import OnDemandHosts
from perdure.engine.options import deadline_of, flow_registry, payload_options
from perdure.engine.outbox import Outbox
from perdure.engine.overview import Overview
from perdure.engine.publisher import DEFAULT_RETRY, Publisher, Sink, check_sink
from perdure.engine.runner import Runner
from perdure.engine.scheduler import Scheduler
from perdure.engine.schedules import Schedules
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
from perdure.flow.routing import capabilities, labels_of
from perdure.flow.starts import plan
from perdure.observe.health import Readiness
from perdure.observe.observer import Observer
from perdure.observe.retention import Pruner, retention_policy
from perdure.records import (
    ErrorInfo,
    JournalEntry,
    ResumeRecord,
    RunInfo,
    RunStatus,
    run_error,
)
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


class Engine(RunLifecycle, RunFinding, OnDemandHosts, Overview):
    """Starts, drives and inspects durable workflow runs on one database.

    ``Engine(url, workflows=[...])`` is a worker: it claims and executes runs of those
    workflows. ``worker=False`` makes a client that starts and inspects runs only. Use it as an
    async context manager (or ``await engine.open()`` / ``await engine.close()``).

    Options: ``table_prefix`` lets several applications share a database; ``concurrency``
    bounds the runs driven at once; ``lease`` (seconds) is how long a claim lasts without a
    heartbeat (every ``heartbeat`` seconds); a wait longer than ``park_after`` seconds parks
    the run instead of holding its coroutine (a shorter timer waits in memory without holding
    a ``concurrency`` slot); ``shutdown_grace`` is how long ``close()`` lets
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
                 | None = None, create: bool = True, queues: Iterable[Queue] = (),
                 limits: Iterable[Limit] = (), labels: dict[str, str] | None = None) -> None:
        self._options: dict[str, Any] = dict(
            workflows=workflows, worker=worker, table_prefix=table_prefix,
            concurrency=concurrency, lease=lease, heartbeat=heartbeat, park_after=park_after,
            poll_interval=poll_interval, shutdown_grace=shutdown_grace,
            synchronous=synchronous, clock=clock, max_payload=max_payload, codec=codec,
            blobs=blobs, offload_above=offload_above, tracing=tracing, metrics=metrics,
            outbox=outbox, outbox_retry=outbox_retry, outbox_timeout=outbox_timeout,
            retention=retention, create=create, queues=queues, limits=limits, labels=labels)
        self.url = url
        self.workflows = Registry(workflows)
        #: the queues and limits this engine knows (declared, and its workflows' queues)
        self.flow = flow_registry(queues, limits, self.workflows)
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
        sizes = payload_options(max_payload, codec, blobs, offload_above)
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
            **sizes)
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
        try:
            await self.flow.define_all(self.store, self.clock.time())
        except BaseException:
            await self._stop_clock_sync()
            await self.store.close()
            raise
        self._open = True
        if self.is_worker and self.workflows:
            self._worker = worker = self._new_worker(self.worker_id)
            if self.metrics is not None:
                self._untrack.append(self.metrics.track_in_memory(lambda: len(worker.active)))
                feeder = asyncio.get_running_loop().create_task(self._feed_queue_metrics())
                self._untrack.append(feeder.cancel)
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
                        payloads=self.payloads, observer=self.observer, flow=self.flow)
        return Worker(
            store=self.store, clock=self.clock, runner=runner,
            keys=[wf_key(name, version) for name, version in self.workflows.pairs()],
            concurrency=self.concurrency, lease=self.lease, heartbeat=self.heartbeat,
            poll_interval=self.poll_interval, worker_id=worker_id,
            scheduler=Scheduler(self.store, self.clock, on_cancel=self._cancel_flagged),
            queues=list(self.flow.queues), caps=capabilities(self.labels))

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
        datetime, or a timedelta from now) the run is cancelled. ``tags`` (text to text, at most
        32; see ``perdure.set_tags``) make the run findable with ``list_runs(tags=...)``; a
        start that finds the run already there keeps the first start's tags.

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
        run_id = validate.run_id(id) if id is not None else str(uuid.uuid4())
        tag_pairs = () if tags is None else tuple(sorted(
            (k, v) for k, v in validate.tags(tags).items() if v is not None))
        # Flow options are checked before anything (an offloaded argument) is written.
        flow = plan(self.flow, default_queue=definition.queue,
                    default_requires=definition.requires, queue=queue, key=key,
                    priority=priority, delay=delay, requires=requires, debounce=debounce,
                    explicit_id=id is not None, now=self.clock.time())
        text = definition.codec.encode_args(args, kwargs, limit=self.payloads.max_payload)
        text = await self.payloads.store(text, f"the arguments of workflow {definition.name!r}")
        now = self.clock.time()
        with self.observer.starting(definition.name, run_id) as watch:
            run = NewRun(run_id, definition.name, definition.version, text, now,
                         deadline=deadline_of(deadline, now), trace_context=watch.trace_context,
                         tags=tag_pairs, status=flow.status, wake_at=flow.wake_at,
                         reason=flow.reason, queue=flow.queue, key=flow.key,
                         priority=flow.priority, share=flow.share, requires=flow.requires)
            if flow.debounce:
                run_id = await self.store.create_debounced(run)
                created = True
            else:
                created = await self.store.create_run(run)
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
        return WorkflowHandle(self, validate.run_id(run_id))

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
        validate.run_id(run_id)
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
        validate.run_id(run_id)
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
