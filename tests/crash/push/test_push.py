"""A worker process notices at once what another process commits on the same SQLite file (a
start, a signal, a cancel request): by push over its Unix datagram socket, not by its poll,
which runs only every 5 s here. A dead or stopped worker's socket never troubles a sender."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import statistics
import tempfile
import time
import uuid
from typing import Any

import pytest

from perdure import Engine, RunStatus
from perdure.testing import wait_for_journal, wait_for_status
from tests.crash.app_push import POLL, first, listen
from tests.crash.harness import Cluster

pytestmark = pytest.mark.crash

#: loose bounds for a loaded test box; the strict figures (p50 ≤ 2 ms, p99 ≤ 10 ms) are
#: measured by bench/push_latency.py. Without push every sample would wait for the 5 s poll.
MEDIAN_WITHIN = 0.1
EACH_WITHIN = 1.0
SAMPLES = 8


async def _began(cluster: Cluster, tag: str) -> float:
    """When the run tagged ``tag`` got to run (the worker's wall clock)."""
    events = await cluster.wait_events(
        lambda ev: any(e["event"] == "began" and e.get("tag") == tag for e in ev),
        what=f"run {tag} to begin", timeout=3 * POLL)
    return float(next(e["at"] for e in events if e["event"] == "began" and e.get("tag") == tag))


async def _waiting(client: Engine, tag: str) -> Any:
    handle = await client.start(listen, tag)
    await wait_for_journal(handle, lambda j: [e.status for e in j] == ["waiting"],
                           timeout=3 * POLL)
    return handle


def _check(latencies: list[float]) -> None:
    assert max(latencies) < EACH_WITHIN, latencies
    assert statistics.median(latencies) < MEDIAN_WITHIN, latencies


async def test_a_run_started_by_another_process_begins_without_waiting_for_the_poll(
        cluster: Cluster, client: Engine) -> None:
    await cluster.start("w1").ready()
    latencies = []
    for i in range(SAMPLES):
        t0 = time.time()
        await client.start(first, f"start-{i}")
        latencies.append(await _began(cluster, f"start-{i}") - t0)
    _check(latencies)


async def test_a_signal_from_another_process_resumes_a_run_held_in_memory_at_once(
        cluster: Cluster, client: Engine) -> None:
    await cluster.start("w1").ready()
    latencies = []
    for i in range(SAMPLES):
        handle = await _waiting(client, f"signal-{i}")
        t0 = time.time()
        assert await client.signal(handle.id, "go", "now")
        latencies.append(await _began(cluster, f"signal-{i}") - t0)
        assert await handle.result() == "now"
    _check(latencies)


async def test_a_cancel_from_another_process_stops_a_run_held_in_memory_at_once(
        cluster: Cluster, client: Engine) -> None:
    await cluster.start("w1").ready()
    for i in range(3):
        handle = await _waiting(client, f"cancel-{i}")
        assert await client.cancel(handle.id)
        await wait_for_status(handle, RunStatus.CANCELLED, timeout=EACH_WITHIN)


def _stale_addresses(directory: str) -> list[str]:
    """Addresses nobody reads: an abstract name never bound, a socket file whose owner closed
    it, a path with no file at all."""
    gone = os.path.join(directory, "gone.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(gone)
    sock.close()  # the file stays: sending to it is refused
    return [f"@perdure-{uuid.uuid4().hex}", gone, os.path.join(directory, "missing.sock")]


async def test_dead_and_stopped_workers_sockets_neither_fail_nor_slow_a_sender(
        cluster: Cluster, client: Engine) -> None:
    await cluster.start("w1").ready()
    stopped = cluster.start("w2")
    await stopped.ready()
    with tempfile.TemporaryDirectory() as directory:
        with sqlite3.connect(cluster.db) as db:
            for i, addr in enumerate(_stale_addresses(directory)):
                # On another host, so no live worker reaps them: every send meets them.
                db.execute("INSERT INTO perdure_workers (id, host, pid, pid_start, started_at, "
                           "heartbeat_at, serves, wake_addr) VALUES (?, 'elsewhere', 1, NULL, "
                           "0, 0, '[]', ?)", (f"dead-{i}", addr))
        # A stopped worker reads nothing: its socket's queue fills, and then refuses at once.
        os.kill(stopped.pid, signal.SIGSTOP)
        await stopped.wait_state("T")
        try:
            latencies, calls = [], []
            for i in range(2 * SAMPLES):
                t0 = time.time()
                await client.start(first, f"stale-{i}")
                calls.append(time.time() - t0)
                latencies.append(await _began(cluster, f"stale-{i}") - t0)
        finally:
            os.kill(stopped.pid, signal.SIGCONT)
    assert max(calls) < EACH_WITHIN, calls
    _check(latencies)
