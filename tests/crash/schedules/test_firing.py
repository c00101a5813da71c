"""A schedule fired by real worker processes, one of them SIGKILLed in the middle of a firing
(its slot's run hangs in its step): no slot is started twice, none is lost, and the run the
killed worker was driving completes once, on another worker."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from perdure import Engine, RunStatus, Schedule
from tests.crash.harness import Cluster, settle_all

pytestmark = pytest.mark.crash


def slot_of(run_id: str) -> datetime:
    return datetime.fromisoformat(run_id.split("@", 1)[1].replace("Z", "+00:00"))


async def test_a_worker_killed_during_a_firing_does_not_double_it(
        cluster: Cluster, client: Engine) -> None:
    # Every second, overlapping runs allowed: every slot must fire, exactly once.
    await client.schedules.create(Schedule("tick", "ticker", "t", cron="* * * * * *",
                                           overlap="allow", catchup=timedelta(minutes=5)))
    # Two workers fire the same schedule; a hangs in every step it runs, after the side
    # effect and before its journal write.
    a = cluster.start("a", hang=["tick@after"])
    b = cluster.start("b", notify=True)
    await a.ready()
    await b.ready()
    [hung] = [e for e in await cluster.wait_events(
        lambda seen: any(e["event"] == "hung" for e in seen), what="a hung in a slot's run")
        if e["event"] == "hung"][:1]
    a.kill()
    # b recovers a's runs and keeps firing: wait until it has run a few slots after the kill.
    done_before = sum(1 for e in cluster.events.seen if e["event"] == "did")
    await cluster.wait_events(
        lambda seen: sum(1 for e in seen if e["event"] == "did") >= done_before + 4,
        what="b running slots after the kill", timeout=30)
    await client.schedules.pause("tick")
    runs = sorted(r.id for r in await client.list_runs(limit=10_000) if r.id.startswith("tick@"))
    outcomes = await settle_all(client, runs, timeout=30)
    assert {o.status for o in outcomes.values()} == {RunStatus.COMPLETED}
    # One run per slot, and no slot missing between the first and the last.
    slots = [slot_of(r) for r in runs]
    assert slots == [slots[0] + timedelta(seconds=i) for i in range(len(slots))]
    assert hung["run"] in runs
    info = await client.schedules.get("tick")
    assert (info.fired, info.skipped_missed, info.skipped_overlap) == (len(runs), 0, 0)
    # Each slot's step ran once, except in the runs a was driving when it died: there a
    # second time, on b (steps are at-least-once; the journal holds one outcome).
    ran = Counter(e["run"] for e in cluster.ledger())
    by_a = {e["run"] for e in cluster.ledger() if e["pid"] == a.pid}
    assert hung["run"] in by_a
    for run in runs:
        assert ran[run] == (2 if run in by_a else 1), run
        [entry] = outcomes[run].journal
        assert entry[1:4] == ("step", "tick", "completed")
