"""The synchronous façade: the async engine underneath, for code without an event loop."""

from __future__ import annotations

import pytest

from perdure import PerdureError, RunStatus, SyncEngine, step, workflow


@step
def add(a: int, b: int) -> int:
    return a + b


@workflow
async def adder(a: int, b: int) -> int:
    return await add(a, b)


def test_sync_engine_start_result_status_journal(db_url: str) -> None:
    with SyncEngine(db_url, workflows=[adder]) as engine:
        handle = engine.start(adder, 2, 3, id="sum")
        assert handle.result(timeout=10) == 5
        assert handle.status().status is RunStatus.COMPLETED
        assert [e.name for e in handle.journal()] == ["add"]
        assert engine.handle("sum").result() == 5
        assert [r.id for r in engine.list_runs()] == ["sum"]
        assert engine.start(adder, 9, 9, id="sum").result() == 5  # idempotent start


def test_sync_engine_must_be_open(db_url: str) -> None:
    engine = SyncEngine(db_url, workflows=[adder])
    with pytest.raises(PerdureError, match="not open"):
        engine.start(adder, 1, 2)


def test_sync_engine_pauses_and_forks(db_url: str) -> None:
    with SyncEngine(db_url, workflows=[adder]) as engine:
        handle = engine.start(adder, 1, 2, id="s1")
        assert handle.result(timeout=10) == 3
        assert engine.pause("s1") is False  # finished: nothing to pause
        fork = engine.fork("s1", from_seq=1, id="s1-fork")
        assert fork.result(timeout=10) == 3
        assert fork.status().forked_from == "s1"
        assert fork.incarnations() == []
