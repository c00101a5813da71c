"""OpenTelemetry traces with the real SDK and its in-memory exporter, on both backends.

One trace from the caller's span (an HTTP request's, say) through ``start``, every execution
of the run (the trace context is stored with the run, so an execution after a park continues
it), each step attempt, and the runs of child workflows. The crash test (a worker SIGKILLed
mid-run, the run recovered by another process) is ``tests/crash/test_traces.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import perdure
from perdure import (
    Engine,
    RetryPolicy,
    RunStatus,
    SyncEngine,
    VirtualClock,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.testing import wait_for_status

NO_WAIT = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)
_failed_once: set[str] = set()
#: the test's tracer provider (the global one can be set only once per process)
_providers: list[TracerProvider] = []


@step(retry=NO_WAIT)
async def charge(key: str) -> str:
    """Fails the first attempt, then succeeds; opens a span of its own, as a client library
    instrumented with OpenTelemetry would."""
    with _providers[-1].get_tracer("payments").start_as_current_span("POST /charges"):
        if key not in _failed_once:
            _failed_once.add(key)
            raise ConnectionError("the payment service hung up")
    return f"charged {key}"


@step(retry=RetryPolicy(max_attempts=1))
async def refuse() -> None:
    raise ValueError("card declined")


@workflow
async def checkout(key: str) -> str:
    receipt = await charge(key)
    await perdure.sleep(timedelta(hours=1))  # parks: the next execution is another span
    return receipt


@workflow
async def declined() -> None:
    await refuse()


@workflow
async def pay(key: str) -> str:
    return await charge(key)


@workflow
async def shop() -> str:
    child = await perdure.start_child(pay, "kid")
    return await child.result()


@pytest.fixture(autouse=True)
def _reset() -> None:
    _failed_once.clear()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _providers.append(provider)
    yield provider
    _providers.remove(provider)
    provider.shutdown()


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_ids(spans: Sequence[ReadableSpan]) -> set[int]:
    return {s.context.trace_id for s in spans if s.context is not None}


async def test_one_trace_from_the_request_through_every_execution_and_attempt(
        provider: TracerProvider, exporter: InMemorySpanExporter, make_engine: Any) -> None:
    clock = VirtualClock()
    engine: Engine = await make_engine(checkout, tracing=provider, clock=clock)
    with provider.get_tracer("web").start_as_current_span("POST /orders",
                                                          kind=SpanKind.SERVER) as request:
        handle = await engine.start(checkout, "o-1", id="order-1")
    await wait_for_status(handle, RunStatus.WAITING)
    clock.advance(timedelta(hours=1))
    assert await handle.result(timeout=20) == "charged o-1"

    spans = exporter.get_finished_spans()
    assert trace_ids(spans) == {request.get_span_context().trace_id}
    [start] = named(spans, "start checkout")
    assert parent_of(start) == request.get_span_context().span_id
    assert start.kind is SpanKind.PRODUCER
    assert start.attributes is not None and start.attributes["perdure.run_id"] == "order-1"

    # Two executions (before and after the park), each a child of the start.
    runs = named(spans, "run checkout")
    assert [parent_of(r) for r in runs] == [span_id(start)] * 2
    assert [r.attributes["perdure.claim"] for r in runs if r.attributes] == ["new", "resumed"]
    assert [r.attributes["perdure.outcome"] for r in runs if r.attributes] == \
        ["parked", "completed"]
    first, second = runs
    assert first.attributes is not None and "sleep until" in str(first.attributes["perdure.reason"])
    assert [e.name for e in first.events] == ["wait"]
    assert [e.name for e in second.events] == ["timer fired"]
    assert second.events[0].attributes is not None
    assert second.events[0].attributes["perdure.lateness_seconds"] == 0.0

    # Two attempts of the step in the first execution; the failed one records its exception.
    attempts = named(spans, "step charge")
    assert [parent_of(a) for a in attempts] == [span_id(first)] * 2
    assert [a.attributes["perdure.attempt"] for a in attempts if a.attributes] == [1, 2]
    failed, ok = attempts
    assert failed.status.status_code is StatusCode.ERROR
    [exception] = [e for e in failed.events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ConnectionError"
    assert failed.attributes is not None and "perdure.retry_at" in failed.attributes
    assert ok.status.status_code is StatusCode.UNSET
    # The step's own spans (an instrumented client) nest under its attempt.
    assert sorted(parent_of(s) or 0 for s in named(spans, "POST /charges")) == \
        sorted(span_id(a) for a in attempts)


async def test_a_failed_run_records_its_exception(
        provider: TracerProvider, exporter: InMemorySpanExporter, make_engine: Any) -> None:
    engine = await make_engine(declined, tracing=provider)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(declined)).result(timeout=20)
    [run] = named(exporter.get_finished_spans(), "run declined")
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes is not None and run.attributes["perdure.outcome"] == "failed"
    [exception] = [e for e in run.events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "perdure.errors.StepFailed"


async def test_a_child_run_continues_its_parents_trace(
        provider: TracerProvider, exporter: InMemorySpanExporter, make_engine: Any) -> None:
    engine = await make_engine(shop, pay, tracing=provider)
    handle = await engine.start(shop)
    assert await handle.result(timeout=20) == "charged kid"

    spans = exporter.get_finished_spans()
    assert len(trace_ids(spans)) == 1
    [parent_run] = named(spans, "run shop")
    [child_run] = named(spans, "run pay")
    # The child's execution hangs under the execution of the parent that started it.
    [started] = [e for e in parent_run.events if e.name == "child started"]
    assert started.attributes is not None
    assert started.attributes["perdure.child.workflow"] == "pay"
    assert parent_of(child_run) == span_id(parent_run)
    assert len(named(spans, "step charge")) == 2


async def test_a_run_started_without_tracing_is_traced_per_execution(
        provider: TracerProvider, exporter: InMemorySpanExporter, make_engine: Any) -> None:
    """A client without tracing stores no context: the worker's executions are root spans."""
    client = await make_engine(declined, worker=False)
    await make_engine(declined, tracing=provider)
    handle = await client.start(declined)
    with pytest.raises(WorkflowFailed):
        await handle.result(timeout=20)
    [run] = named(exporter.get_finished_spans(), "run declined")
    assert run.parent is None


def test_tracing_option_is_checked() -> None:
    with pytest.raises(perdure.InvalidConfiguration, match="TracerProvider"):
        Engine("sqlite:///:memory:", tracing="yes")  # type: ignore[arg-type]


def test_a_sync_engine_continues_the_callers_trace(
        provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path: Any) -> None:
    """SyncEngine runs the engine on a thread of its own; the caller's span still parents the
    start (a Flask or Django request's trace goes on into the run)."""
    with SyncEngine(f"sqlite:///{tmp_path / 'sync.db'}", workflows=[pay], tracing=provider,
                    shutdown_grace=0.5) as engine:
        with provider.get_tracer("web").start_as_current_span("GET /pay") as request:
            handle = engine.start(pay, "s")
        assert handle.result(timeout=20) == "charged s"
    spans = exporter.get_finished_spans()
    assert trace_ids(spans) == {request.get_span_context().trace_id}
    [start] = named(spans, "start pay")
    assert parent_of(start) == request.get_span_context().span_id
