"""A trace survives a crash: the worker that recovers a run continues the trace of its start.

The client starts the run inside a span (an HTTP request's, say); worker a executes two steps
and hangs in the third, and is SIGKILLed; worker b recovers the run. Both processes export
their spans to files (``tests/crash/traced.py``): every span, from either process, is in the
trace of the client's request, and each execution's span is a child of the start's. On SQLite
(the cluster's file) and on PostgreSQL (a clone of the session's template; b finds a dead by
its advisory lock).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from perdure import Engine, RunStatus
from tests.conftest import PgCluster
from tests.crash.app import WORKFLOWS
from tests.crash.harness import Cluster, settle_all

pytestmark = pytest.mark.crash


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.traced", "TRACED"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, its workers and client on SQLite or on a PostgreSQL database."""
    if request.param == "sqlite":
        yield cluster
        return
    pg: PgCluster = request.getfixturevalue("pg")
    name = pg.new_database()
    cluster.url = pg.url(name)
    try:
        yield cluster
    finally:
        pg.drop(name)


def _spans(cluster: Cluster, pid: int) -> list[dict[str, Any]]:
    path = cluster.dir / f"spans-{pid}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] \
        if path.exists() else []


async def test_the_recovering_worker_continues_the_trace_of_the_start(
        backend: Cluster, tmp_path: Path) -> None:
    cluster = backend
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Engine(cluster.url, workflows=WORKFLOWS, worker=False,
                      tracing=provider) as client:
        with provider.get_tracer("web").start_as_current_span("POST /pipelines") as request:
            await client.start("pipeline", "t", id="traced")
        trace_id = format(request.get_span_context().trace_id, "032x")
        [start] = [s for s in exporter.get_finished_spans() if s.name == "start pipeline"]
        assert start.context is not None
        start_id = format(start.context.span_id, "016x")

        a = cluster.start("a", hang=["s3@after"])
        await cluster.wait_events(lambda seen: any(e["event"] == "hung" for e in seen),
                                  what="worker a hung in s3")
        a.kill()
        b = cluster.start("b")
        outcome = (await settle_all(client, ["traced"]))["traced"]
        assert outcome.status is RunStatus.COMPLETED
    provider.shutdown()

    before, after = _spans(cluster, a.pid), _spans(cluster, b.pid)
    # a exported the attempts it finished (s1, s2) and nothing of its run span, which the
    # SIGKILL cut off; b's spans are its whole execution.
    assert [s["name"] for s in before] == ["step s1", "step s2"]
    assert [s["name"] for s in after] == ["step s3", "step s4", "step s5", "run pipeline"]
    assert {s["trace_id"] for s in before + after} == {trace_id}
    [recovered] = [s for s in after if s["name"] == "run pipeline"]
    assert recovered["parent_id"] == start_id
    assert recovered["attributes"]["perdure.claim"] == "recovered"
    assert recovered["attributes"]["perdure.outcome"] == "completed"
    assert recovered["attributes"]["perdure.seq"] == 2  # two steps journaled before the kill
    assert {s["parent_id"] for s in after if s["name"].startswith("step")} == \
        {recovered["span_id"]}
