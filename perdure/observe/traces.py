"""OpenTelemetry traces (the optional extra ``perdure[otel]``, the official API).

One trace per run, whatever happens to the processes that drive it:

* ``start WORKFLOW`` (kind PRODUCER): the ``engine.start`` call, a child of whatever span is
  current there (an HTTP request's). Its context is stored with the run (``runs.trace_context``,
  a W3C carrier made by the globally configured propagator).
* ``run WORKFLOW`` (kind CONSUMER): one span per execution of the run by a worker, a child of
  the stored context: the first execution, every one after a park or a hand-back, and the one
  that recovers the run from a worker that died, which therefore continues the same trace.
  Waits, fired timers, started children and the way the execution ended are its events and
  attributes; a failed run's exception is recorded on it.
* ``step NAME`` / ``compensation NAME``: one span per attempt, current while the step's code
  runs (spans it opens nest under it), with the exception of a failed attempt recorded.

This module is imported only when tracing is on, so the core never imports OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from perdure.errors import InvalidConfiguration
from perdure.observe.logs import utc
from perdure.records import ErrorInfo

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise InvalidConfiguration(
        "tracing needs OpenTelemetry: pip install 'perdure[otel]'") from exc

__all__ = ["AttemptSpan", "ExecutionSpan", "Tracing"]

#: attribute names on every Perdure span (OpenTelemetry attribute naming: dotted, lower case)
RUN_ID = "perdure.run_id"
WORKFLOW = "perdure.workflow"
VERSION = "perdure.workflow.version"


class Tracing:
    """Makes Perdure's spans with ``provider`` (default: the global tracer provider)."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        if provider is not None and not isinstance(provider, trace.TracerProvider):
            raise InvalidConfiguration(
                f"tracing must be True, False or an OpenTelemetry TracerProvider, not "
                f"{type(provider).__name__}")
        self.tracer: Tracer = trace.get_tracer("perdure", _version(), tracer_provider=provider)

    @contextlib.contextmanager
    def start(self, workflow: str, run_id: str) -> Iterator[StartSpan]:
        """The span of an ``engine.start`` call; its ``trace_context`` is what the run keeps."""
        span = self.tracer.start_span(f"start {workflow}", kind=SpanKind.PRODUCER,
                                      attributes={RUN_ID: run_id, WORKFLOW: workflow})
        with trace.use_span(span, end_on_exit=True):
            yield StartSpan(span)

    def execution(self, *, run_id: str, workflow: str, version: str, stored: str | None,
                  attributes: Mapping[str, Any]) -> ExecutionSpan:
        """The span of one execution of a run, a child of the ``stored`` trace context."""
        parent = propagate.extract(_carrier(stored)) if stored else None
        span = self.tracer.start_span(
            f"run {workflow}", context=parent, kind=SpanKind.CONSUMER,
            attributes={RUN_ID: run_id, WORKFLOW: workflow, VERSION: version, **attributes})
        return ExecutionSpan(self.tracer, span, run_id)


class StartSpan:
    """The span of a start call."""

    def __init__(self, span: Span) -> None:
        self.span = span

    @property
    def trace_context(self) -> str | None:
        """The current context (this span's) as stored with the run."""
        return current_context()

    def created(self, created: bool) -> None:
        """Whether the start created the run (False: the id existed; nothing was started)."""
        self.span.set_attribute("perdure.created", created)


class ExecutionSpan:
    """The span of one execution of a run; ``with`` makes it current in the run's task."""

    def __init__(self, tracer: Tracer, span: Span, run_id: str) -> None:
        self.tracer = tracer
        self.span = span
        self.run_id = run_id
        self._token: object = None

    def __enter__(self) -> None:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]

    def attempt(self, seq: int, kind: str, name: str, number: int) -> AttemptSpan:
        """A span for one attempt of a step or compensation, a child of the current span."""
        span = self.tracer.start_span(f"{kind} {name}", attributes={
            RUN_ID: self.run_id, "perdure.seq": seq, "perdure.step": name,
            "perdure.step.kind": kind, "perdure.attempt": number})
        return AttemptSpan(span)

    def event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """An event on the execution's span (a wait, a fired timer, a child started)."""
        self.span.add_event(name, {k: v for k, v in attributes.items() if v is not None})

    def end(self, outcome: str, *, seq: int, reason: str | None = None,
            wake_at: float | None = None, error: BaseException | None = None) -> None:
        """End the execution: how it ended (completed, failed, cancelled, blocked, parked,
        handed_back, lost), with the failure or the reason."""
        self.span.set_attributes({"perdure.outcome": outcome, "perdure.seq.end": seq})
        if reason is not None:
            self.span.set_attribute("perdure.reason", reason)
        if wake_at is not None:
            self.span.set_attribute("perdure.wake_at", utc(wake_at) or "")
        if error is not None:
            _record(self.span, error)
        if outcome in ("failed", "blocked"):
            description = reason or (_describe(error) if error is not None else outcome)
            self.span.set_status(Status(StatusCode.ERROR, description))
        self.span.end()


class AttemptSpan:
    """The span of one attempt, current while the attempt runs (see ``RunHooks.attempt``)."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def enter(self) -> None:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def leave(self) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]

    def end(self, *, error: BaseException | None = None, retry_at: float | None = None,
            interrupted: bool = False) -> None:
        if interrupted:
            self.span.set_attribute("perdure.interrupted", True)
        if error is not None:
            _record(self.span, error)
            self.span.set_status(Status(StatusCode.ERROR, _describe(error)))
            if retry_at is not None:
                self.span.set_attribute("perdure.retry_at", utc(retry_at) or "")
        self.span.end()


def _version() -> str | None:
    # Not perdure.__version__: the package's __init__ imports the engine, a layer above this.
    try:
        return importlib.metadata.version("perdure")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        return None


def _describe(error: BaseException) -> str:
    info = ErrorInfo.from_exception(error)  # never raises, even when str(error) does
    return f"{info.type}: {info.message}"


def _record(span: Span, error: BaseException) -> None:
    """``span.record_exception``, which formats the exception with ``str()``: user code can
    make that raise, and a span must never fail the run it describes."""
    try:
        span.record_exception(error)
    except Exception:
        info = ErrorInfo.from_exception(error)
        span.add_event("exception", {"exception.type": info.type,
                                     "exception.message": info.message,
                                     "exception.stacktrace": info.traceback})


def current_context() -> str | None:
    """The current trace context as JSON text (a W3C carrier), or None when it is empty."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":"), sort_keys=True) if carrier else None


def _carrier(stored: str) -> dict[str, str]:
    try:
        data = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}
