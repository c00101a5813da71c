"""``perdure queues`` and ``perdure runs list --queue`` against a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from perdure import Engine, Limit, Queue, step, workflow
from perdure.cli.main import main
from perdure.testing import wait_for_status

mail = Queue("mail", concurrency=1, per_worker=1)
gpu = Limit("gpu-cli", concurrency=1)
gate: dict[str, asyncio.Event] = {}


@step(limits=[gpu])
async def render(n: int) -> int:
    await gate["open"].wait()
    return n


@workflow(queue=mail)
async def send(n: int) -> int:
    return await render(n)


@workflow(requires={"gpu": "*"})
async def train(n: int) -> int:
    return n


async def test_queues_shows_depth_running_parked_and_runs_no_worker_can_take(
        tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    gate["open"] = asyncio.Event()
    async with Engine(url, workflows=[send, train], concurrency=5) as engine:
        first = await engine.start(send, 1, key="tenant-1")
        await wait_for_status(first, "running")
        for n in range(2, 5):
            await engine.start(send, n, key="tenant-2")
        await engine.start(train, 9)
        await asyncio.sleep(0.2)
        code = await asyncio.to_thread(main, ["queues", "--db", url])
        out = capsys.readouterr().out
        assert code == 0
        lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
        # QUEUE CONCURRENCY PER-WORKER PER-KEY RATE DEPTH RUNNING WAITING PARKED OLDEST NO-WORKER
        assert lines["mail"][1:8] == ["1", "1", "-", "-", "3", "1", "0"]
        assert lines["(routed)"][5] == "1" and lines["(routed)"][-1] == "1"
        assert lines["gpu-cli"][1:4] == ["1", "-", "1"]
        code = await asyncio.to_thread(main, ["runs", "list", "--db", url, "--queue", "mail"])
        out = capsys.readouterr().out
        assert code == 0 and first.id in out and out.count("send") == 4
        code = await asyncio.to_thread(main, ["runs", "show", "--db", url, first.id])
        out = capsys.readouterr().out
        assert "queue" in out and "mail (priority 0)" in out and "tenant-1" in out
        gate["open"].set()
        await first.result(timeout=10)


def test_queues_on_a_database_without_any(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    assert main(["migrate", "--db", url]) == 0  # a client command never creates a database
    capsys.readouterr()
    assert main(["queues", "--db", url]) == 0
    assert "no queues or limits" in capsys.readouterr().out
