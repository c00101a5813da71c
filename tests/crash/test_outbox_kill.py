"""The outbox publisher SIGKILLed mid-delivery, against a real HTTP server that also refuses
deliveries on purpose: every event is delivered, in order per key, and an event is delivered
twice only where a kill cut its delivery off."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator

import pytest

from perdure import Engine
from tests.conftest import PgCluster
from tests.crash.app_outbox import SECRET, WORKFLOWS, announce, expected_order
from tests.crash.harness import Cluster
from tests.webhook_server import Received, WebhookServer

pytestmark = [pytest.mark.crash, pytest.mark.slow]

RUNS, EVENTS, KILLS = 8, 10, 3  # 112 events; the kills come after 10, 20 and 30 deliveries


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_outbox", "ENGINE"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[str]:
    """The cluster's database: its SQLite file, or a fresh PostgreSQL database (where a
    killed publisher is found dead by its free advisory lock rather than its pid)."""
    if request.param == "postgres":
        pg: PgCluster = request.getfixturevalue("pg")
        name = pg.new_database()
        cluster.url = pg.url(name)
        try:
            yield request.param
        finally:
            pg.drop(name)
        return
    yield request.param


def _refuse(r: Received) -> bool:
    # The first attempt of every third keyed event fails: retries with back-off, mid-stream.
    return r.key is not None and r.body["payload"]["i"] % 3 == 1 and r.attempt == 1


async def test_publisher_killed_mid_delivery(cluster: Cluster, backend: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    async with Engine(cluster.url, workflows=WORKFLOWS, worker=False) as client:
        await _kill_publishers(cluster, client, monkeypatch)


async def _kill_publishers(cluster: Cluster, client: Engine,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    with WebhookServer(SECRET, refuse=_refuse) as server:
        monkeypatch.setenv("OUTBOX_TEST_URL", server.url)
        workers = {}
        for name in ("w1", "w2"):
            worker = cluster.start(name, log_level="INFO")
            workers[await worker.ready()] = worker
        runs = [f"run-{i}" for i in range(RUNS)]
        for run in runs:
            await client.start(announce, run, EVENTS, id=run)

        killed: set[str] = set()
        for k in range(KILLS):
            # Some more deliveries went through; then hold the next one, and kill its sender.
            await asyncio.to_thread(server.wait_for,
                                    lambda rs, k=k: sum(r.status == 204 for r in rs)
                                    >= 10 * (k + 1), 30)
            mark = len(server.received)
            server.stall()
            await asyncio.to_thread(server.wait_for,
                                    lambda rs, mark=mark: any(r.held for r in rs[mark:]), 30)
            leader = (await client.outbox.stats()).leader
            assert leader in workers, (leader, list(workers))
            victim = workers.pop(leader)
            held = {r.sender for r in server.received[mark:] if r.held}
            assert held == {str(victim.pid)}  # one publisher at a time: the lease holder's
            victim.kill()
            killed.add(str(victim.pid))
            server.release()
            replacement = cluster.start(f"w{k + 3}", log_level="INFO")
            workers[await replacement.ready()] = replacement

        for run in runs:
            assert await client.handle(run).result(timeout=30) == EVENTS
        ids = {f"{run}:{e.seq}" for run in runs for e in await client.journal(run)
               if e.kind == "emit"}
        assert len(ids) == RUNS * (EVENTS + len(range(0, EVENTS, 3)))  # keyed + keyless
        await asyncio.to_thread(
            server.wait_for, lambda rs: {r.id for r in rs if r.status == 204} >= ids, 40)
        async with asyncio.timeout(20):
            while (await client.outbox.stats()).pending:
                await asyncio.sleep(0.05)

    truncated = [r for r in server.received if r.status == -1]
    assert {r.sender for r in truncated} <= killed  # cut off mid-request by a kill
    received = [r for r in server.received if r.status != -1]
    assert [(r.id, r.status, r.headers) for r in received if not r.signed] == []
    assert {r.id for r in received} == ids
    delivered = [r for r in received if r.status == 204]
    # In order per key: each run's keyed events arrive in emit order (a repeat may follow a
    # kill, never an earlier event after a later one).
    by_key: dict[str, list[int]] = defaultdict(list)
    for r in delivered:
        if r.key is not None:
            by_key[r.key].append(r.body["payload"]["i"])
    for run in runs:
        seq = by_key[run]
        assert seq == sorted(seq), (run, seq)
        assert sorted(set(seq)) == expected_order(EVENTS)
    # Duplicates only where a kill cut a delivery off: an event answered more than once was
    # first answered to a publisher that was then killed (before it could record it).
    answers: dict[str, list[Received]] = defaultdict(list)
    for r in delivered:
        answers[r.id].append(r)
    for event_id, got in answers.items():
        for earlier in got[:-1]:
            assert earlier.sender in killed, (event_id, [(x.sender, x.attempt) for x in got])
    cut = [r for r in received if r.status == 0] + truncated
    assert cut and {r.sender for r in cut} <= killed
    assert all(answers[r.id] and answers[r.id][-1].sender != r.sender for r in cut)
    refused = [r for r in received if r.status == 500]
    assert refused  # the receiver did fail on purpose, and those were retried
    assert all(answers[r.id] for r in refused)
