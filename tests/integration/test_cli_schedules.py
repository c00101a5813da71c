"""``perdure schedules list|pause|resume|trigger|backfill|delete`` against a real database, on
both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perdure import Engine, Schedule, workflow
from perdure.cli.main import main


@workflow(name="nightly")
async def nightly(team: str) -> str:
    return team


def _create(url: str) -> None:
    async def create() -> None:
        async with Engine(url, workflows=[nightly], worker=False) as engine:
            await engine.schedules.create(Schedule("nightly-ops", nightly, "ops",
                                                   cron="0 3 * * *", timezone="Europe/Berlin",
                                                   overlap="buffer_one"))

    asyncio.run(create())


def _runs(url: str) -> list[str]:
    async def ids() -> list[str]:
        async with Engine(url, worker=False) as engine:
            return sorted(r.id for r in await engine.list_runs())

    return asyncio.run(ids())


def test_schedules_commands(db_url: str, capsys: Any) -> None:
    _create(db_url)
    assert main(["schedules", "list", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "nightly-ops" in out and "0 3 * * *" in out and "Europe/Berlin" in out
    assert "buffer_one" in out and "active" in out and "0/0" in out
    assert main(["schedules", "pause", "nightly-ops", "--db", db_url]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["schedules", "list", "--db", db_url]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["schedules", "resume", "nightly-ops", "--db", db_url]) == 0
    assert "next slot 20" in capsys.readouterr().out
    assert main(["schedules", "trigger", "nightly-ops", "--db", db_url]) == 0
    assert "run nightly-ops@trigger-" in capsys.readouterr().out
    assert main(["--db", db_url, "schedules", "backfill", "nightly-ops",
                 "--start", "2030-01-01", "--end", "2030-01-03T00:00+01:00"]) == 0
    assert "2 slot(s) from 2030-01-01T00:00:00.000Z" in capsys.readouterr().out
    runs = _runs(db_url)
    assert [r for r in runs if "trigger" not in r] == ["nightly-ops@2030-01-01T02:00:00Z",
                                                       "nightly-ops@2030-01-02T02:00:00Z"]
    assert main(["schedules", "delete", "nightly-ops", "--db", db_url]) == 0
    assert "deleted" in capsys.readouterr().out
    assert main(["schedules", "delete", "nightly-ops", "--db", db_url]) == 2
    assert "ScheduleNotFound: no schedule with id 'nightly-ops'" in capsys.readouterr().err
    assert main(["schedules", "list", "--db", db_url]) == 0
    assert "nightly-ops" not in capsys.readouterr().out
    assert _runs(db_url) == runs  # the runs stay


@pytest.mark.parametrize("argv", [
    ["schedules"], ["schedules", "pause"], ["schedules", "stop", "x"],
    ["schedules", "backfill", "x", "--start", "soon", "--end", "2030-01-01"],
    ["schedules", "backfill", "x", "--start", "2030-01-01"]])
def test_schedules_usage_errors(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert "usage: perdure schedules" in capsys.readouterr().err
