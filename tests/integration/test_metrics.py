"""Prometheus metrics: exact values after a known workload, on both backends.

The workload's every count is known in advance: runs started (by the client and as children),
finished by status, step attempts by outcome, retries, timers fired, claims by kind. Samples
are read from the engine's own registry (``engine.metrics.registry``); the HTTP exposition is
tested with a real worker process in ``test_observe_cli``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import perdure
from perdure import Engine, RetryPolicy, RunStatus, VirtualClock, WorkflowFailed, step, workflow
from perdure.testing import wait_for_status

NO_WAIT = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)
_failed_once: set[str] = set()


@step(retry=NO_WAIT)
async def flaky(key: str) -> str:
    """Fails the first attempt for each key, then succeeds."""
    if key not in _failed_once:
        _failed_once.add(key)
        raise ConnectionError(f"flaky {key}")
    return key.upper()


@step(retry=RetryPolicy(max_attempts=2, initial_delay=0.0, jitter=0.0))
async def doomed() -> None:
    raise ValueError("never works")


@workflow
async def order(key: str) -> str:
    value = await flaky(key)
    await perdure.sleep(0.001)  # short: served in memory
    return value


@workflow
async def broken() -> None:
    await doomed()


@workflow
async def parent() -> str:
    child = await perdure.start_child(order, "child")
    return await child.result()


@workflow
async def napper() -> str:
    await perdure.sleep(timedelta(hours=1))  # long: parks
    return "rested"


@workflow
async def overdue() -> None:
    await perdure.sleep_until(datetime(2029, 12, 31, tzinfo=UTC))  # before the clock's start


#: what ``perdure worker tests.integration.test_metrics:WORKFLOWS`` drives
WORKFLOWS = [order, broken, parent, napper]


@pytest.fixture(autouse=True)
def _reset() -> None:
    _failed_once.clear()


def sample(engine: Engine, name: str, **labels: str) -> float | None:
    assert engine.metrics is not None
    return engine.metrics.registry.get_sample_value(name, labels)


async def run_workload(engine: Engine) -> None:
    """Three orders, a failing run and a parent with one child, all to their end."""
    handles = [await engine.start(order, key) for key in ("a", "b", "c")]
    assert [await h.result(timeout=20) for h in handles] == ["A", "B", "C"]
    with pytest.raises(WorkflowFailed):
        await (await engine.start(broken)).result(timeout=20)
    assert await (await engine.start(parent)).result(timeout=20) == "CHILD"


async def test_exact_counters_after_a_known_workload(make_engine: Any) -> None:
    engine = await make_engine(*WORKFLOWS, metrics=True)
    await run_workload(engine)

    # Started here: by engine.start, and one child started by a workflow.
    assert sample(engine, "perdure_runs_started_total", workflow="order") == 4
    assert sample(engine, "perdure_runs_started_total", workflow="broken") == 1
    assert sample(engine, "perdure_runs_started_total", workflow="parent") == 1
    assert sample(engine, "perdure_runs_finished_total", workflow="order",
                  status="completed") == 4
    assert sample(engine, "perdure_runs_finished_total", workflow="broken",
                  status="failed") == 1
    assert sample(engine, "perdure_runs_finished_total", workflow="parent",
                  status="completed") == 1
    assert sample(engine, "perdure_run_duration_seconds_count", workflow="order",
                  status="completed") == 4
    assert sample(engine, "perdure_run_executions_total", workflow="order",
                  outcome="completed") == 4
    assert sample(engine, "perdure_runs_claimed_total", workflow="order", kind="new") == 4
    assert sample(engine, "perdure_runs_claimed_total", workflow="order",
                  kind="resumed") is None

    # Each order's step fails once and is retried once; doomed fails both of its attempts.
    step_labels = {"workflow": "order", "step": "flaky", "kind": "step"}
    assert sample(engine, "perdure_step_attempts_total", **step_labels,
                  outcome="completed") == 4
    assert sample(engine, "perdure_step_attempts_total", **step_labels, outcome="failed") == 4
    assert sample(engine, "perdure_step_retries_total", **step_labels) == 4
    assert sample(engine, "perdure_step_attempt_duration_seconds_count", **step_labels) == 8
    doomed_labels = {"workflow": "broken", "step": "doomed", "kind": "step"}
    assert sample(engine, "perdure_step_attempts_total", **doomed_labels,
                  outcome="failed") == 2
    assert sample(engine, "perdure_step_retries_total", **doomed_labels) == 1

    assert sample(engine, "perdure_timer_lateness_seconds_count", workflow="order") == 4
    assert sample(engine, "perdure_claim_latency_seconds_count", workflow="order") == 4
    assert sample(engine, "perdure_claim_latency_seconds_count", workflow="parent") == 1
    # Nothing went wrong with the database or the leases; nothing is left in memory.
    assert sample(engine, "perdure_leases_lost_total", workflow="order") is None
    assert sample(engine, "perdure_storage_errors_total", operation="claim") is None
    assert sample(engine, "perdure_runs_in_memory") == 0


async def test_a_parked_timer_counts_its_lateness_and_the_claim_that_woke_it(
        make_engine: Any) -> None:
    clock = VirtualClock()
    engine = await make_engine(napper, metrics=True, clock=clock)
    handle = await engine.start(napper)
    await wait_for_status(handle, RunStatus.WAITING)
    assert sample(engine, "perdure_run_executions_total", workflow="napper",
                  outcome="parked") == 1

    clock.advance(timedelta(hours=1, seconds=5))  # the worker wakes 5 s after the due time
    assert await handle.result(timeout=20) == "rested"

    assert sample(engine, "perdure_runs_claimed_total", workflow="napper", kind="new") == 1
    assert sample(engine, "perdure_runs_claimed_total", workflow="napper", kind="resumed") == 1
    # Virtual time: exactly 5 s late, and the resumed run had been claimable for exactly 5 s.
    assert sample(engine, "perdure_timer_lateness_seconds_count", workflow="napper") == 1
    assert sample(engine, "perdure_timer_lateness_seconds_sum", workflow="napper") == 5.0
    assert sample(engine, "perdure_claim_latency_seconds_count", workflow="napper") == 2
    assert sample(engine, "perdure_claim_latency_seconds_sum", workflow="napper") == 5.0
    assert sample(engine, "perdure_runs_finished_total", workflow="napper",
                  status="completed") == 1
    assert sample(engine, "perdure_run_duration_seconds_sum", workflow="napper",
                  status="completed") == 3605.0


async def test_a_timer_due_before_the_run_reached_it_is_not_late(make_engine: Any) -> None:
    clock = VirtualClock()  # 2030-01-01
    engine = await make_engine(overdue, metrics=True, clock=clock)
    await (await engine.start(overdue)).result(timeout=20)
    assert sample(engine, "perdure_timer_lateness_seconds_count", workflow="overdue") == 1
    assert sample(engine, "perdure_timer_lateness_seconds_sum", workflow="overdue") == 0.0


async def test_engines_sharing_a_registry_share_its_metrics(make_engine: Any) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    client = await make_engine(order, worker=False, metrics=registry)
    worker = await make_engine(order, metrics=registry)
    assert client.metrics is worker.metrics
    handle = await client.start(order, "shared")
    assert await handle.result(timeout=20) == "SHARED"
    assert registry.get_sample_value("perdure_runs_started_total", {"workflow": "order"}) == 1
    assert registry.get_sample_value("perdure_runs_finished_total",
                                     {"workflow": "order", "status": "completed"}) == 1


def test_metrics_option_is_checked() -> None:
    with pytest.raises(perdure.InvalidConfiguration, match="CollectorRegistry"):
        Engine("sqlite:///:memory:", metrics="yes")  # type: ignore[arg-type]


def test_the_queue_hook_creates_its_gauges_on_first_use() -> None:
    """Flow control feeds queue depth and the oldest waiting age through ``set_queue``."""
    engine = Engine("sqlite:///:memory:", metrics=True)
    assert sample(engine, "perdure_queue_depth", queue="emails") is None
    assert engine.metrics is not None
    engine.metrics.set_queue("emails", 12, 3.5)
    assert sample(engine, "perdure_queue_depth", queue="emails") == 12
    assert sample(engine, "perdure_queue_oldest_waiting_seconds", queue="emails") == 3.5


async def test_the_queues_report_feeds_the_queue_gauges(tmp_path: Path) -> None:
    """A worker with metrics refreshes the queue gauges from the database (every 10 s, and on
    every ``engine.queues()``): runs in line and the oldest one's wait."""
    line = perdure.Queue("gauged", concurrency=1)
    clock = VirtualClock()
    async with Engine(f"sqlite:///{tmp_path / 'q.db'}", workflows=[napper], queues=[line],
                      metrics=True, clock=clock, worker=False) as engine:
        for _ in range(3):
            await engine.start(napper, queue=line)
        clock.advance(timedelta(seconds=4))
        report = await engine.queues()
        [state] = [q for q in report.queues if q.name == "gauged"]
        assert state.depth == 3
        assert sample(engine, "perdure_queue_depth", queue="gauged") == 3
        assert sample(engine, "perdure_queue_oldest_waiting_seconds", queue="gauged") == \
            pytest.approx(4.0, abs=0.5)
