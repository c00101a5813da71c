"""Stranded runs: unfinished runs whose workflow version no live worker serves are listed by
``perdure runs list --stranded`` and logged by the workers, with the versions that are served."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import VirtualClock, workflow
from perdure.cli.main import main


@workflow(name="billing", version="1")
async def billing_v1(n: int) -> int:
    await perdure.wait_for_signal("go")
    return n


@workflow(name="billing", version="2")
async def billing_v2(n: int) -> int:
    await perdure.wait_for_signal("go")
    return n * 2


async def _logged(caplog: Any, needle: str) -> str:
    async with asyncio.timeout(10):
        while True:
            for record in caplog.records:
                if needle in record.getMessage():
                    return str(record.getMessage())
            await asyncio.sleep(0.01)


async def test_runs_of_a_version_no_worker_serves_are_stranded(
        make_engine: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="perdure")
    client = await make_engine(billing_v1, billing_v2, worker=False)
    old = [await client.start(billing_v1, i, id=f"old-{i}") for i in range(2)]
    new = await client.start(billing_v2, 9, id="new")
    assert {r.id for r in await client.stranded_runs()} == {"old-0", "old-1", "new"}
    assert await client.served_versions() == {}

    await make_engine(billing_v2)  # a deploy that forgot version 1
    stranded = await client.stranded_runs()
    assert sorted(r.id for r in stranded) == ["old-0", "old-1"]
    assert {(r.workflow, r.version) for r in stranded} == {("billing", "1")}
    assert await client.served_versions() == {"billing": ["2"]}
    message = await _logged(caplog, "stranded run(s)")
    assert "2 of workflow 'billing' version '1'" in message
    assert "Live workers serve: billing (2)" in message

    await make_engine(billing_v1)  # the fix: a worker that has it
    assert await client.stranded_runs() == []
    for run in (*old, new):
        await run.signal("go")
    assert [await r.result(timeout=10) for r in (*old, new)] == [0, 1, 18]
    assert await client.stranded_runs(workflow="billing") == []


async def test_a_worker_that_stopped_or_died_serves_nothing(
        make_engine: Any, clock: VirtualClock) -> None:
    client = await make_engine(billing_v1, worker=False, clock=clock)
    await client.start(billing_v1, 1, id="r")
    stopped = await make_engine(billing_v1, clock=clock)
    assert await client.stranded_runs() == []
    await stopped.close()  # unregisters
    assert [r.id for r in await client.stranded_runs()] == ["r"]

    crashed = await make_engine(billing_v1, clock=clock, lease=2.0)
    assert await client.stranded_runs() == []
    await crashed.abort()  # its row stays, with its last heartbeat
    clock.advance(timedelta(seconds=31))  # three of the client's leases (10 s)
    assert [r.id for r in await client.stranded_runs()] == ["r"]


async def test_the_cli_lists_stranded_runs_and_what_is_served(
        make_engine: Any, db_url: str, capsys: Any) -> None:
    client = await make_engine(billing_v1, worker=False)
    await client.start(billing_v1, 1, id="stuck")
    await make_engine(billing_v2)
    argv = ["runs", "list", "--stranded", "--db", db_url]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "stuck" in out and "billing" in out
    assert "live workers serve: billing (2)" in out


@pytest.mark.sqlite_only
async def test_runs_list_without_stranded_is_unchanged(make_engine: Any, db_url: str,
                                                       capsys: Any) -> None:
    client = await make_engine(billing_v1, worker=False)
    await client.start(billing_v1, 1, id="listed")
    assert await asyncio.to_thread(main, ["runs", "list", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "listed" in out and "live workers serve" not in out
