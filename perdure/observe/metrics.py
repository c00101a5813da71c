"""Prometheus metrics (the optional extra ``perdure[metrics]``, ``prometheus-client``).

Names follow Prometheus' conventions: counters end in ``_total``, durations are histograms in
``_seconds``; labels are bounded by the code (workflow, step, status), never by run ids. Every
count is of what *this process* did: sum over the workers (``sum by (workflow) (...)``) for the
cluster. The README lists them with example alerts.

Queue depth and the oldest waiting run's age are read from the database, not counted here: a
worker's engine refreshes them every 10 s (and on every ``engine.queues()``) through
:meth:`Metrics.set_queue`, which creates those gauges on first use.

This module is imported only when metrics are on, so the core never imports prometheus-client.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable

from perdure.errors import InvalidConfiguration

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise InvalidConfiguration(
        "metrics need prometheus-client: pip install 'perdure[metrics]'") from exc

__all__ = ["Metrics", "StepMetrics"]

# Seconds. Waits a person notices start around 0.1 s; a timer hours late is an outage.
_LATENESS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
             30.0, 60.0, 300.0, 900.0, 3600.0)
_STEP = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
         60.0, 120.0, 300.0, 900.0)
_RUN = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 3 * 3600.0,
        12 * 3600.0, 86400.0, 7 * 86400.0)

# One set of metrics per registry: two engines in one process (a client and a worker, or two
# workers in a test) sharing a registry share its counters instead of colliding.
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


class Metrics:
    """Perdure's metrics in one Prometheus registry.

    ``Metrics.for_registry(registry)`` returns the one instance of a registry (the default
    ``prometheus_client.REGISTRY`` to be scraped with the application's own metrics, or a
    registry of the engine's own); serve ``metrics.registry`` to Prometheus.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.runs_started = Counter(
            "perdure_runs_started", "Runs created by this process (engine.start and child "
            "workflows), by workflow.", ["workflow"], registry=r)
        self.runs_claimed = Counter(
            "perdure_runs_claimed", "Executions begun by this worker, by how the run was "
            "claimed: new (first time), resumed (after a park, a hand-back or an operator's "
            "resume) or recovered (from a worker that died or lost its lease).",
            ["workflow", "kind"], registry=r)
        self.runs_finished = Counter(
            "perdure_runs_finished", "Runs this worker brought to an end, by status: "
            "completed, failed, cancelled, or blocked (stopped for an operator).",
            ["workflow", "status"], registry=r)
        self.executions = Counter(
            "perdure_run_executions", "Executions of runs by this worker, by how they ended: "
            "completed, failed, cancelled, blocked, parked (waiting, coroutine dropped), "
            "handed_back (drain), lost (another worker owns the run now) or abandoned (an "
            "engine error; the run is claimed again when its lease lapses).",
            ["workflow", "outcome"], registry=r)
        self.run_duration = Histogram(
            "perdure_run_duration_seconds", "From a run's creation to its end, by workflow and "
            "status (database time).", ["workflow", "status"], buckets=_RUN, registry=r)
        self.step_attempts = Counter(
            "perdure_step_attempts", "Attempts of steps and compensations (kind), by outcome: "
            "completed or failed (whether or not it will be retried).",
            ["workflow", "step", "kind", "outcome"], registry=r)
        self.step_retries = Counter(
            "perdure_step_retries", "Failed attempts that will be retried.",
            ["workflow", "step", "kind"], registry=r)
        self.step_duration = Histogram(
            "perdure_step_attempt_duration_seconds", "How long one attempt of a step or "
            "compensation ran (wall time).", ["workflow", "step", "kind"], buckets=_STEP,
            registry=r)
        self.timer_lateness = Histogram(
            "perdure_timer_lateness_seconds", "How late durable timers (sleep, sleep_until) "
            "fired after their due time (database time), including the time to claim and "
            "replay a parked run.", ["workflow"], buckets=_LATENESS, registry=r)
        self.claim_latency = Histogram(
            "perdure_claim_latency_seconds", "From the moment a run became claimable (created, "
            "due, signalled, its child finished) to its claim by this worker (database time).",
            ["workflow"], buckets=_LATENESS, registry=r)
        self.leases_lost = Counter(
            "perdure_leases_lost", "Executions stopped because another worker owns the run "
            "now (this worker's lease lapsed or its write was fenced off).", ["workflow"],
            registry=r)
        self.storage_errors = Counter(
            "perdure_storage_errors", "Database errors the worker's loops met and retried "
            "(claim, heartbeat) or that stopped an execution (run), by operation.",
            ["operation"], registry=r)
        self.runs_in_memory = Gauge(
            "perdure_runs_in_memory", "Runs this process drives right now (claimed, their "
            "coroutine in memory).", registry=r)
        self._in_memory: list[Callable[[], int]] = []
        self.runs_in_memory.set_function(self._count_in_memory)
        self._queue_depth: Gauge | None = None
        self._queue_oldest: Gauge | None = None
        self._steps: dict[tuple[str, str, str], StepMetrics] = {}

    def step(self, workflow: str, step: str, kind: str) -> StepMetrics:
        """The series of one step (or compensation) of a workflow, looked up once: a label
        lookup costs more than the increment it serves, and steps are the hot path."""
        key = (workflow, step, kind)
        found = self._steps.get(key)
        if found is None:
            found = self._steps[key] = StepMetrics(
                completed=self.step_attempts.labels(workflow, step, kind, "completed"),
                failed=self.step_attempts.labels(workflow, step, kind, "failed"),
                retries=self.step_retries.labels(workflow, step, kind),
                duration=self.step_duration.labels(workflow, step, kind))
        return found

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """The metrics of ``registry`` (None: a new registry of their own)."""
        if registry is None:
            return cls(CollectorRegistry(auto_describe=True))
        if not isinstance(registry, CollectorRegistry):
            raise InvalidConfiguration(
                f"metrics must be True, False or a prometheus_client CollectorRegistry, not "
                f"{type(registry).__name__}")
        with _lock:
            found = _by_registry.get(registry)
            if found is None:
                found = _by_registry[registry] = cls(registry)
            return found

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """A WSGI application serving the registry in Prometheus' text format (or
        OpenMetrics, as the scraper asks)."""
        app: Callable[..., Iterable[bytes]] = make_wsgi_app(self.registry)
        return app

    def track_in_memory(self, count: Callable[[], int]) -> Callable[[], None]:
        """Add ``count`` (a worker's runs in memory) to ``perdure_runs_in_memory``; returns
        the function that removes it again."""
        with _lock:
            self._in_memory.append(count)

        def untrack() -> None:
            with _lock:
                if count in self._in_memory:
                    self._in_memory.remove(count)

        return untrack

    def _count_in_memory(self) -> float:
        with _lock:
            sources = list(self._in_memory)
        return float(sum(count() for count in sources))

    def set_queue(self, queue: str, depth: int, oldest_waiting_seconds: float) -> None:
        """The hook flow control feeds: runs waiting in ``queue`` now, and how long the oldest
        of them has waited (``perdure_queue_depth``, ``perdure_queue_oldest_waiting_seconds``,
        created on first use)."""
        with _lock:
            if self._queue_depth is None:
                self._queue_depth = Gauge(
                    "perdure_queue_depth", "Runs waiting in a queue to be claimed.", ["queue"],
                    registry=self.registry)
                self._queue_oldest = Gauge(
                    "perdure_queue_oldest_waiting_seconds", "How long the oldest run waiting "
                    "in a queue has waited.", ["queue"], registry=self.registry)
        assert self._queue_oldest is not None
        self._queue_depth.labels(queue).set(depth)
        self._queue_oldest.labels(queue).set(oldest_waiting_seconds)


class StepMetrics:
    """The labelled series of one step: attempts by outcome, retries, attempt durations."""

    __slots__ = ("completed", "duration", "failed", "retries")

    def __init__(self, *, completed: Counter, failed: Counter, retries: Counter,
                 duration: Histogram) -> None:
        self.completed = completed
        self.failed = failed
        self.retries = retries
        self.duration = duration
