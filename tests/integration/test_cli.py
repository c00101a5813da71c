"""The ``perdure`` command against a real database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, workflow
from perdure.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@workflow
async def greet(name: str) -> str:
    return f"hello {name}"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perdure", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


def test_migrate_list_show_and_errors(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", "--db", url]) == 0

    async def make_run() -> None:
        async with Engine(url, workflows=[greet]) as engine:
            await (await engine.start(greet, "ana", id="g-1")).result(timeout=10)

    asyncio.run(make_run())
    capsys.readouterr()
    assert main(["runs", "list", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "g-1" in out and "completed" in out
    assert main(["runs", "list", "--db", url, "--status", "failed"]) == 0
    assert "g-1" not in capsys.readouterr().out
    assert main(["runs", "show", "g-1", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "status    completed" in out and "SEQ" in out
    assert main(["runs", "show", "nope", "--db", url]) == 2
    assert "RunNotFound" in capsys.readouterr().err
    assert main(["resume", "g-1", "--db", url]) == 2
    assert main(["cancel", "g-1", "--db", url]) == 0
    assert "already finished" in capsys.readouterr().out
    assert main(["signal", "g-1", "go", "{not json", "--db", url]) == 2
    assert main(["runs", "list", "--db", "mysql://x"]) == 2
    assert main(["runs", "list", "--db", url, "--status", "nonsense"]) == 2


@pytest.mark.crash
def test_worker_command_drives_runs_and_drains_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with subprocess.Popen(
            [sys.executable, "-m", "perdure", "worker", "tests.integration.test_cli:greet",
             "--db", url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True) as worker:
        try:
            assert worker.stdout is not None
            assert "driving greet" in worker.stdout.readline()  # up and claiming

            async def client() -> str:
                async with Engine(url, workflows=[greet], worker=False) as engine:
                    result: str = await (await engine.start(greet, "bo")).result(timeout=20)
                    return result

            assert asyncio.run(client()) == "hello bo"
            worker.terminate()
            assert worker.wait(timeout=20) == 0
            assert "draining" in worker.stdout.read()
        finally:
            worker.kill()
            worker.wait()
