"""The engine's observer: what happens to runs, told to the logs, the traces and the metrics.

The engine makes one :class:`Observer`; its worker and runner report claims, storage errors
and each execution of a run (an :class:`Execution`, which is also the run's
:class:`~perdure.workflow.hooks.RunHooks`, so the workflow layer's operations report through
it). Logs are always on; traces and metrics only when their extra is installed and enabled.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from perdure.observe.logs import run_event, utc
from perdure.records import ClaimedRun, ErrorInfo
from perdure.workflow.hooks import AttemptWatch, RunHooks

if TYPE_CHECKING:
    from perdure.observe.metrics import Metrics
    from perdure.observe.traces import AttemptSpan, ExecutionSpan, StartSpan, Tracing

__all__ = ["FINISHED", "Execution", "Observer"]

#: outcomes of an execution that end the run (blocked included: it waits for an operator)
FINISHED = frozenset({"completed", "failed", "cancelled", "blocked"})


class Observer:
    """Reports what an engine does with its runs (one per engine)."""

    def __init__(self, *, worker: str, tracing: Tracing | None = None,
                 metrics: Metrics | None = None) -> None:
        self.worker = worker
        self.tracing = tracing
        self.metrics = metrics

    @classmethod
    def build(cls, worker: str, *, tracing: Any = False, metrics: Any = False) -> Observer:
        """The observer of an engine's options: ``tracing`` is a bool or a tracer provider,
        ``metrics`` a bool or a Prometheus registry. A library is imported only when its
        option is on; a missing one raises ``InvalidConfiguration`` naming the extra."""
        traces = measures = None
        if tracing is not False and tracing is not None:
            from perdure.observe.traces import Tracing

            traces = Tracing(None if tracing is True else tracing)
        if metrics is not False and metrics is not None:
            from perdure.observe.metrics import Metrics

            measures = Metrics.for_registry(None if metrics is True else metrics)
        return cls(worker=worker, tracing=traces, metrics=measures)

    # -- client side ------------------------------------------------------------------------

    @contextlib.contextmanager
    def starting(self, workflow: str, run_id: str) -> Iterator[Start]:
        """Around ``engine.start``: its span (whose context the run keeps) and, once it
        created the run, its log line and count."""
        start = Start(self, workflow, run_id)
        if self.tracing is None:
            yield start
            return
        with self.tracing.start(workflow, run_id) as span:
            start.span = span
            yield start

    # -- worker side ------------------------------------------------------------------------

    def claimed(self, runs: list[ClaimedRun], now: float) -> None:
        """A claim took ``runs`` at ``now``: how long each had been claimable."""
        if self.metrics is None:
            return
        for run in runs:
            if not run.recovered and run.wake_at is not None:
                self.metrics.claim_latency.labels(run.workflow).observe(
                    max(0.0, now - run.wake_at))

    def execution(self, run: ClaimedRun, journaled: int) -> Execution:
        """An execution of ``run`` begins, with ``journaled`` operations to replay."""
        return Execution(self, run, journaled)

    def storage_error(self, operation: str) -> None:
        """A database error in ``operation`` (claim, heartbeat, run); the caller logs it."""
        if self.metrics is not None:
            self.metrics.storage_errors.labels(operation).inc()


class Start:
    """One ``engine.start`` call being observed."""

    def __init__(self, observer: Observer, workflow: str, run_id: str) -> None:
        self.observer = observer
        self.workflow = workflow
        self.run_id = run_id
        self.span: StartSpan | None = None

    @property
    def trace_context(self) -> str | None:
        """What the run keeps to continue this trace (None without tracing)."""
        return None if self.span is None else self.span.trace_context

    def done(self, *, created: bool, version: str) -> None:
        """The start returned: ``created`` False when the run id already existed."""
        if self.span is not None:
            self.span.created(created)
        if not created:
            return
        if self.observer.metrics is not None:
            self.observer.metrics.runs_started.labels(self.workflow).inc()
        run_event("started", {"run_id": self.run_id, "workflow": self.workflow,
                              "version": version, "seq": 0})


class Execution(RunHooks):
    """One execution of a run by this worker: from its claim until it settles or is lost."""

    def __init__(self, observer: Observer, run: ClaimedRun, journaled: int) -> None:
        self.observer = observer
        self.run = run
        self.metrics = observer.metrics
        self.kind = "recovered" if run.recovered else "new" if run.epoch == 1 else "resumed"
        self.ended = False
        self.span: ExecutionSpan | None = None
        if observer.tracing is not None:
            self.span = observer.tracing.execution(
                run_id=run.id, workflow=run.workflow, version=run.version,
                stored=run.trace_context, attributes={
                    "perdure.worker": observer.worker, "perdure.epoch": run.epoch,
                    "perdure.claim": self.kind, "perdure.seq": journaled,
                    "perdure.generation": run.generation})
        if self.metrics is not None:
            self.metrics.runs_claimed.labels(run.workflow, self.kind).inc()
        run_event({"new": "claimed", "resumed": "resumed", "recovered": "recovered"}[self.kind],
                  self._fields(journaled))

    def _fields(self, seq: int, **more: Any) -> dict[str, Any]:
        return {"run_id": self.run.id, "workflow": self.run.workflow,
                "version": self.run.version, "seq": seq, "worker": self.observer.worker,
                "epoch": self.run.epoch, **more}

    # -- the run's task ---------------------------------------------------------------------

    def __enter__(self) -> None:
        if self.span is not None:
            self.span.__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.span is not None:
            self.span.__exit__(kind, exc, tb)

    def end(self, outcome: str, *, seq: int, now: float, reason: str | None = None,
            wake_at: float | None = None, error: BaseException | None = None,
            error_info: ErrorInfo | None = None) -> None:
        """The execution ended: ``outcome`` is completed, failed, cancelled, blocked, parked,
        handed_back, lost or abandoned (an engine error, which the worker logs; the run is
        claimed again when its lease lapses). Only the first call counts."""
        if self.ended:
            return
        self.ended = True
        if error_info is None and error is not None:
            error_info = ErrorInfo.from_exception(error)
        wf = self.run.workflow
        if self.metrics is not None:
            self.metrics.executions.labels(wf, outcome).inc()
            if outcome in FINISHED:
                self.metrics.runs_finished.labels(wf, outcome).inc()
                self.metrics.run_duration.labels(wf, outcome).observe(
                    max(0.0, now - self.run.created_at))
            elif outcome == "lost":
                self.metrics.leases_lost.labels(wf).inc()
        if self.span is not None:
            self.span.end(outcome, seq=seq, reason=reason, wake_at=wake_at, error=error)
        level = logging.WARNING if outcome in ("blocked", "lost", "abandoned") else logging.INFO
        run_event(outcome, self._fields(
            seq, reason=reason, wake_at=utc(wake_at),
            error_type=error_info.type if error_info else None,
            error=error_info.message if error_info else None), level=level)

    # -- RunHooks: what the workflow's operations report ------------------------------------

    def attempt(self, seq: int, kind: str, name: str, number: int) -> AttemptWatch:
        if self.span is None:
            if self.metrics is None:
                return _UNWATCHED  # logs only: nothing to do per attempt
            return _Attempt(self, kind, name, None)
        return _Attempt(self, kind, name, self.span.attempt(seq, kind, name, number))

    def waiting(self, reason: str, due: float | None) -> None:
        if self.span is not None:
            self.span.event("wait", {"perdure.reason": reason, "perdure.due": utc(due)})

    def timer_fired(self, seq: int, due: float, now: float) -> None:
        late = max(0.0, now - due)
        if self.metrics is not None:
            self.metrics.timer_lateness.labels(self.run.workflow).observe(late)
        if self.span is not None:
            self.span.event("timer fired", {"perdure.seq": seq, "perdure.due": utc(due),
                                            "perdure.lateness_seconds": late})

    def child_started(self, child_id: str, workflow: str) -> None:
        if self.metrics is not None:
            self.metrics.runs_started.labels(workflow).inc()
        if self.span is not None:
            self.span.event("child started", {"perdure.child.run_id": child_id,
                                              "perdure.child.workflow": workflow})
        run_event("started", {"run_id": child_id, "workflow": workflow, "seq": 0,
                              "parent_id": self.run.id, "worker": self.observer.worker})

    def trace_context(self) -> str | None:
        if self.span is None:
            return None
        from perdure.observe.traces import current_context

        return current_context()


_UNWATCHED = AttemptWatch()


class _Attempt(AttemptWatch):
    """One attempt of a step or compensation: its span (current while it runs), its count and
    its duration."""

    def __init__(self, execution: Execution, kind: str, name: str,
                 span: AttemptSpan | None) -> None:
        self.execution = execution
        self.kind = kind
        self.name = name
        self.span = span
        self.began = 0.0
        self.seconds = 0.0

    def __enter__(self) -> None:
        self.began = time.perf_counter()
        if self.span is not None:
            self.span.enter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Wall time, not the engine's clock: a virtual clock does not move while code runs.
        self.seconds = time.perf_counter() - self.began
        if self.span is not None:
            self.span.leave()
        if exc is None:
            self._count("completed")
            if self.span is not None:
                self.span.end()
        elif not isinstance(exc, Exception) and self.span is not None:
            # Interrupted (the task was cancelled, the run stopped): not the step's outcome.
            self.span.end(interrupted=True)
        # An Exception: failed() follows with the step's own error and the retry decision.

    def failed(self, error: BaseException, *, retry_at: float | None) -> None:
        self._count("failed", retried=retry_at is not None)
        if self.span is not None:
            self.span.end(error=error, retry_at=retry_at)

    def _count(self, outcome: str, *, retried: bool = False) -> None:
        metrics = self.execution.metrics
        if metrics is None:
            return
        series = metrics.step(self.execution.run.workflow, self.name, self.kind)
        (series.completed if outcome == "completed" else series.failed).inc()
        if retried:
            series.retries.inc()
        series.duration.observe(self.seconds)
