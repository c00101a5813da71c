"""Requests and callbacks across a SIGKILL of the worker at the worst points: a reply
journaled just before the kill still reaches its caller; a request taken just before the kill
is answered by the next worker; a callback token survives the kill and completes once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from perdure import CallbackAlreadyCompleted, Engine, RunStatus
from perdure.testing import wait_for_status
from tests.crash.harness import Cluster
from tests.crash.talk.conftest import rows
from tests.crash.waits.helpers import hung_in

pytestmark = pytest.mark.crash


async def request_rows(cluster: Cluster, run_id: str) -> list[tuple[Any, ...]]:
    """(request_id, consumed_seq, reply is set) of the run's requests, in send order."""
    found = await rows(cluster, "SELECT request_id, consumed_seq, reply IS NOT NULL "
                       "FROM perdure_requests WHERE run_id = ? ORDER BY id", run_id)
    return [(rid, seq, bool(replied)) for rid, seq, replied in found]


def ledger_of(cluster: Cluster, name: str) -> list[tuple[str, int]]:
    return [(e["key"], e["pid"]) for e in cluster.ledger() if e["name"] == name]


@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parked", "in-memory"])
async def test_a_reply_journaled_before_the_kill_reaches_its_caller(
        cluster: Cluster, client: Engine, target: str) -> None:
    run_id = f"reply-{target}"
    handle = await client.start("replies_then_works", "t", id=run_id)
    a = cluster.start("a", target=target, hang=["after_reply@before"])
    await a.ready()
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    caller = asyncio.create_task(handle.request("ask", {"n": 1}, timeout=30, id="req-1"))
    # The reply is journaled (with the request row's answer, in one transaction); the worker
    # is killed before the run goes on.
    await cluster.wait_events(hung_in("after_reply"), what="hang after the reply")
    a.kill()
    expected = {"answer": {"n": 1}, "tag": "t"}
    assert await asyncio.wait_for(caller, 15) == expected
    # A caller that crashed before it saw the reply asks again with the same id: it gets the
    # same reply, from the database, with no worker alive and nothing sent again.
    assert (await handle.status()).status is RunStatus.RUNNING
    assert await handle.request("ask", {"n": 1}, timeout=5, id="req-1") == expected

    b = cluster.start("b", target=target)
    result = await handle.result(timeout=20)
    assert result[0] == {"n": 1} and result[1].startswith("after t")
    kinds = Counter(e.kind for e in await handle.journal())
    assert (kinds["request"], kinds["reply"], kinds["step"]) == (1, 1, 1)
    assert await request_rows(cluster, run_id) == [("req-1", 0, True)]
    assert ledger_of(cluster, "after_reply") == [(f"{run_id}:2", b.pid)]


@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parked", "in-memory"])
async def test_a_request_taken_before_the_kill_is_answered_by_the_next_worker(
        cluster: Cluster, client: Engine, target: str) -> None:
    run_id = f"taken-{target}"
    handle = await client.start("approve_after_check", "t", id=run_id)
    a = cluster.start("a", target=target, hang=["check@after"])
    await a.ready()
    caller = asyncio.create_task(handle.request("ask", "invoice-9", timeout=30))
    [event] = await cluster.wait_events(hung_in("check"), what="hang in the check step")
    # Taken and journaled: a replay returns this request, it takes no other.
    assert [(e.kind, e.status) for e in await handle.journal()] == [("request", "completed")]
    a.kill()
    assert not caller.done()
    b = cluster.start("b", target=target)
    reply = await asyncio.wait_for(caller, 20)
    assert reply == f"checked 'invoice-9' key={event['key']}"
    assert await handle.result(timeout=20) == reply
    assert [(rid is not None, seq, replied)
            for rid, seq, replied in await request_rows(cluster, run_id)] == [(True, 0, True)]
    assert ledger_of(cluster, "check") == [(event["key"], a.pid), (event["key"], b.pid)]


@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parked", "in-memory"])
async def test_a_callback_token_survives_the_kill_and_completes_once(
        cluster: Cluster, client: Engine, target: str) -> None:
    run_id = f"click-{target}"
    handle = await client.start("awaits_click", "t", id=run_id)
    a = cluster.start("a", target=target, hang=["mail@after"])
    await cluster.wait_events(hung_in("mail"), what="hang in the mail step")
    token = await handle.get_event("token", timeout=10)
    a.kill()
    # Completed while no worker lives; a second completion is refused.
    await client.complete_callback(token, {"clicked": True})
    with pytest.raises(CallbackAlreadyCompleted):
        await client.complete_callback(token, {"clicked": False})
    b = cluster.start("b", target=target)
    mailed, value = await handle.result(timeout=20)
    # The replay returned the journaled token: the re-run mail step sent the same one.
    assert mailed.startswith(f"mailed {token} ")
    assert value == {"clicked": True}
    journal = await handle.journal()
    assert [e.kind for e in journal] == ["callback", "event", "step", "callback_wait"]
    assert journal[0].output == f'"{token}"'
    assert [pid for _, pid in ledger_of(cluster, "mail")] == [a.pid, b.pid]
    assert await handle.get_event("token") == token
