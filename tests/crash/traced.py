"""A worker target that traces: the crash test app's workflows on an engine with OpenTelemetry.

Each worker process writes its finished spans, one JSON object a line, to
``$PERDURE_CRASH_DIR/spans-PID.jsonl`` (the SDK's console exporter pointed at a file, flushed
per span), so the test reads what a process exported before it was killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from perdure import Engine
from tests.crash.app import WORKFLOWS

__all__ = ["TRACED", "span_line"]


def span_line(span: ReadableSpan) -> str:
    """One span as a JSON line: ids in hex, as W3C traceparent writes them."""
    assert span.context is not None
    return json.dumps({
        "name": span.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "pid": os.getpid(),
    }) + "\n"


def _provider() -> TracerProvider:
    provider = TracerProvider()
    folder = os.environ.get("PERDURE_CRASH_DIR")
    if folder:
        out = open(Path(folder) / f"spans-{os.getpid()}.jsonl", "a")  # noqa: SIM115 - for the process's life
        provider.add_span_processor(SimpleSpanProcessor(
            ConsoleSpanExporter(out=out, formatter=span_line)))
    return provider


#: the command's ``--db`` replaces its URL
TRACED = Engine("sqlite:///unused.db", workflows=WORKFLOWS, tracing=_provider())
