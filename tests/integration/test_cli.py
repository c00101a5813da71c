"""The ``perdure`` command against a real database."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import perdure
from perdure import Engine, RunStatus, Workflow, workflow
from perdure.cli.main import main
from perdure.storage.sqlfiles import migrations
from perdure.testing import wait_for_status

REPO = Path(__file__).resolve().parents[2]
ZULU = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@workflow
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow
async def await_go(name: str) -> str:
    reply = await perdure.wait_for_signal("go", timeout=3600)
    return f"{name}: {reply}"


#: worker targets that serve nothing
NOTHING: list[Workflow[Any, Any]] = []
CLIENT = Engine("sqlite:///:memory:", workflows=[greet], worker=False)


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
    assert "status     completed" in out and "SEQ" in out
    assert main(["runs", "show", "nope", "--db", url]) == 2
    assert "RunNotFound" in capsys.readouterr().err
    assert main(["resume", "g-1", "--db", url]) == 2
    assert main(["cancel", "g-1", "--db", url]) == 0
    assert "already finished" in capsys.readouterr().out
    assert main(["signal", "g-1", "go", "{not json", "--db", url]) == 2
    assert main(["runs", "list", "--db", "mysql://x"]) == 2
    with pytest.raises(SystemExit) as done:  # argparse knows the statuses
        main(["runs", "list", "--db", url, "--status", "nonsense"])
    assert done.value.code == 2


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


def test_global_options_before_or_after_the_subcommand(tmp_path: Path, capsys: Any) -> None:
    before = f"sqlite:///{tmp_path / 'before.db'}"
    after = f"sqlite:///{tmp_path / 'after.db'}"
    assert main(["--db", before, "--prefix", "app_", "migrate"]) == 0
    assert "applied" in capsys.readouterr().out
    assert main(["--db", before, "migrate", "--prefix", "app_"]) == 0
    assert "up to date" in capsys.readouterr().out
    # Given after the subcommand, it wins over the one given before (and a listing does not
    # create the database it names).
    assert main(["--db", before, "runs", "list", "--db", after]) == 2
    assert f"no SQLite database at '{tmp_path / 'after.db'}'" in capsys.readouterr().err
    assert not (tmp_path / "after.db").exists()


def test_version(capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"perdure {perdure.__version__} (Python ")


def test_a_misspelled_option_gets_the_usage_of_its_subcommand(capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(["runs", "list", "--stauts", "failed"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: perdure runs list ")
    assert "perdure runs list: error: unrecognized arguments: --stauts failed" in err
    assert "did you mean --status?" in err
    with pytest.raises(SystemExit):
        main(["signal", "r-1", "go", "--kee", "k"])
    assert capsys.readouterr().err.startswith("usage: perdure signal ")


def test_help_lists_status_values_and_defaults(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["runs", "list", "--help"])
    out = capsys.readouterr().out
    assert "{" + ",".join(s.value for s in RunStatus) + "}" in out
    assert "(default: 50)" in out
    assert "(default: perdure_)" in out and "PERDURE_DATABASE_URL" in out
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # however argparse wraps the columns
    assert "(default: the engine's shutdown_grace, 10)" in out
    assert "--metrics-port PORT" in out and "--log-format {text,json}" in out
    for bad in (["worker", "x:y", "--grace", "nan"], ["runs", "list", "--limit", "0"]):
        with pytest.raises(SystemExit):
            main(bad)
        assert "error: argument" in capsys.readouterr().err


def test_migrate_says_what_it_applied(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["migrate", "--db", url]) == 0
    out = capsys.readouterr().out
    # Every migration file, in order (counted, not hard-coded: each feature adds one).
    labels = [m.label for m in migrations("sqlite", "perdure_")]
    assert labels[:2] == ["0001_init", "0002_waits"]
    assert out == f"applied {len(labels)} migration(s) to {url}: {', '.join(labels)}\n"
    assert main(["migrate", "--db", url]) == 0
    assert "up to date; nothing to apply" in capsys.readouterr().out


async def test_runs_show_tells_arguments_result_due_times_with_zones(tmp_path: Path,
                                                                     capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'show.db'}"
    async with Engine(url, workflows=[await_go, greet], park_after=0.05) as engine:
        done = await engine.start(greet, "ana", id="done-1")
        await done.result(timeout=10)
        waiting = await engine.start(await_go, "bo", id="wait-1")
        await wait_for_status(waiting, "waiting")
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["runs", "show", "done-1", "--db", url]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^arguments\s+\{\"name\":\"ana\"\}$", out, re.MULTILINE), out
    assert re.search(r"^result\s+\"hello ana\"$", out, re.MULTILINE), out
    assert re.search(rf"^created\s+{ZULU.pattern}$", out, re.MULTILINE), out

    assert await asyncio.to_thread(main, ["runs", "show", "wait-1", "--db", url]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^status\s+waiting$", out, re.MULTILINE), out
    assert re.search(r"^waiting\s+waiting for signal 'go'$", out, re.MULTILINE), out
    assert re.search(rf"^wakes at\s+{ZULU.pattern}$", out, re.MULTILINE), out
    header, _, row = out.strip().splitlines()[-3:]
    assert header.split() == ["SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "DUE", "OUTCOME",
                              "STARTED", "FINISHED"]
    assert row.split()[:5] == ["0", "signal", "go", "waiting", "0"]
    assert ZULU.fullmatch(row.split()[5]), row  # the signal's timeout

    assert await asyncio.to_thread(main, ["runs", "list", "--db", url]) == 0
    assert len(ZULU.findall(capsys.readouterr().out)) == 5  # created, updated (x2); wakes


async def test_signal_needs_no_payload(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'sig.db'}"
    async with Engine(url, workflows=[await_go], park_after=0.05) as engine:
        handle = await engine.start(await_go, "cy", id="s-1")
        await wait_for_status(handle, "waiting")
        assert await asyncio.to_thread(main, ["signal", "s-1", "go", "--db", url]) == 0
        assert "sent" in capsys.readouterr().out
        assert await handle.result(timeout=10) == "cy: None"


def test_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pipe.db'}"
    assert main(["migrate", "--db", url]) == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a line is written (`| head` that finished)
    try:
        proc = subprocess.run([sys.executable, "-m", "perdure", "runs", "list", "--db", url],
                              stdout=write, stderr=subprocess.PIPE, text=True, cwd=REPO,
                              timeout=60)
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == 141


@pytest.mark.parametrize(("target", "message"), [
    ("no_such_module:engine", "cannot import 'no_such_module': no module named "
                              "'no_such_module'"),
    ("tests.integration.no_such:x", "no module named 'tests.integration.no_such'"),
    ("tests.integration.test_cli:nope", "'tests.integration.test_cli' has no attribute 'nope'"),
    ("tests.integration.test_cli:greet.nope", "'tests.integration.test_cli.greet' has no "
                                               "attribute 'nope'"),
    ("tests.integration.test_cli:REPO", "is PosixPath"),
    ("tests.integration.test_cli:ZULU", "not an Engine, a workflow or a list of workflows"),
    ("tests.integration.test_cli:NOTHING", "names no workflows: a worker would serve nothing"),
    ("tests.integration.test_cli:CLIENT", "is a client engine (worker=False)"),
    ("no-colon", "expected MODULE:ATTR"),
])
def test_worker_target_mistakes_are_one_line(capsys: Any, target: str, message: str) -> None:
    assert main(["worker", target, "--db", "sqlite:///:memory:"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("perdure: ") and len(err.splitlines()) == 1, err


def test_a_worker_with_nothing_to_serve_refuses_to_start() -> None:
    proc = run_cli("worker", "tests.integration.test_cli:NOTHING", "--db", "sqlite:///:memory:")
    assert proc.returncode == 2
    assert proc.stderr == ("perdure: tests.integration.test_cli:NOTHING names no workflows: a "
                           "worker would serve nothing\n")
