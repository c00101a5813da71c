"""``perdure runs list|show|cancel|resume|prune`` against a real database, on both backends."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import perdure
from perdure import Engine, NonRetryable, VirtualClock, step, workflow
from perdure.cli.main import main
from perdure.testing import wait_for_status

REPO = Path(__file__).resolve().parents[2]
DAY = 86400.0


@step
async def charge(n: int) -> int:
    if n % 4 == 3:
        raise NonRetryable(f"card {n} declined")
    return n


@workflow
async def order(n: int) -> int:
    return await charge(n)


@workflow
async def waits(n: int) -> str:
    return str(await perdure.wait_for_signal("go", timeout=3600))


@workflow
async def family(n: int) -> int:
    child = await perdure.start_child(order, n, id=f"kid-{n}")
    return await child.result()


async def cli(*args: str) -> int:
    """Run the command in this process (``main`` runs its own event loop: off this one)."""
    return await asyncio.to_thread(main, list(args))


async def _populate(engine: Engine, clock: VirtualClock) -> None:
    """o0..o7 (o3 and o7 fail), one second apart, customers c-0/c-1; w0, w1 waiting."""
    for i in range(8):
        handle = await engine.start(order, i, id=f"o{i}", tags={"customer": f"c-{i % 2}"})
        await wait_for_status(handle, "completed", "failed")
        clock.advance(1)
    for i in range(2):
        await wait_for_status(await engine.start(waits, i, id=f"w{i}", tags={"customer": "c-0"}),
                              "waiting")


def _ids(table: str) -> list[str]:
    lines = table.strip().splitlines()
    return [line.split()[0] for line in lines[2:] if line.strip() and not line[0].isspace()
            and line.split()[0] not in ("", "more")][:100]


async def test_runs_list_filters_pages_and_prints_json(make_engine: Any, db_url: str,
                                                       clock: VirtualClock, capsys: Any) -> None:
    engine = await make_engine(order, waits, clock=clock, park_after=0.01)
    await _populate(engine, clock)
    capsys.readouterr()
    assert await cli("runs", "list", "--db", db_url, "--status", "failed") == 0
    out = capsys.readouterr().out
    assert _ids(out.split("\n\n")[0]) == ["o7", "o3"] and "more match" not in out
    assert "customer=c-1" in out

    # A page, the hint, and the next page with the cursor it printed.
    assert await cli("runs", "list", "--db", db_url, "--tag", "customer=c-0", "--limit",
                     "3") == 0
    out = capsys.readouterr().out
    table, hint = out.split("\n\n")
    assert _ids(table) == ["w1", "w0", "o6"]
    assert "3 runs shown; more match" in hint and "--cursor v1." in hint
    cursor = hint.split("--cursor ")[1].split()[0]
    assert await cli("runs", "list", "--db", db_url, "--tag", "customer=c-0", "--limit", "3",
                     "--cursor", cursor) == 0
    out = capsys.readouterr().out
    assert _ids(out.split("\n\n")[0]) == ["o4", "o2", "o0"] and "more match" not in out

    # The same filters as --where expressions, and JSON for scripts.
    assert await cli("runs", "list", "--db", db_url, "--where",
                     "tag.customer=c-1 status=completed", "--where", "workflow=order",
                     "--json", "--limit", "2") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in doc["runs"]] == ["o5", "o1"] and doc["next_cursor"] is None
    assert doc["runs"][0]["arguments"] == {"n": 5} and doc["runs"][0]["result"] == 5
    assert doc["runs"][0]["tags"] == {"customer": "c-1"}

    assert await cli("runs", "list", "--db", db_url, "--workflow", "order", "-o", "jsonl",
                     "--limit", "4") == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["id"] for r in lines] == ["o7", "o6", "o5", "o4"]
    assert lines[0]["error"]["type"].endswith("StepFailed")
    assert "Traceback" in lines[0]["error"]["traceback"]
    assert captured.err.startswith("more runs match: add --cursor v1.")

    created = (await engine.status("o4")).created_at.isoformat()
    assert await cli("runs", "list", "--db", db_url, "--created-after", created,
                     "--created-before", (await engine.status("o6")).created_at.isoformat(),
                     "-o", "jsonl") == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["o5", "o4"]
    assert await cli("runs", "list", "--db", db_url, "--where", "status=cancelled") == 0
    assert capsys.readouterr().out.strip() == "no runs match"


@pytest.mark.parametrize("args, message", [
    (["--where", "stauts=failed"], "unknown filter 'stauts' (did you mean 'status'?)"),
    (["--where", "failed"], "write NAME=VALUE"),
    (["--where", "status=finished"], "unknown status 'finished'"),
    (["--where", "tag.=x"], "write KEY=VALUE"),
    (["--tag", "customer"], "--tag 'customer': write KEY=VALUE"),
    (["--tag", "k=\x00"], "NUL"),
    (["--created-after", "yesterday"], "is not a time"),
    (["--workflow", "a", "--where", "workflow=b"], "the workflow filter is given twice"),
    (["--cursor", "garbage"], "InvalidCursor: 'garbage' is not a cursor"),
    (["--where", "unbalanced='quote"], "--where"),
])
async def test_runs_list_mistakes_are_one_line(make_engine: Any, db_url: str, capsys: Any,
                                               args: list[str], message: str) -> None:
    await make_engine(order)  # the schema exists
    assert await cli("runs", "list", "--db", db_url, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("perdure: ") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "-1"], ["--limit", "x"],
                                  ["--status", "finished"], ["-o", "yaml"]])
async def test_runs_list_usage_errors(make_engine: Any, db_url: str, capsys: Any,
                                      args: list[str]) -> None:
    await make_engine(order)
    with pytest.raises(SystemExit) as done:
        await cli("runs", "list", "--db", db_url, *args)
    assert done.value.code == 2
    assert "usage: perdure runs list" in capsys.readouterr().err


async def test_a_cursor_of_another_query_is_refused(make_engine: Any, db_url: str,
                                                    clock: VirtualClock, capsys: Any) -> None:
    engine = await make_engine(order, waits, clock=clock, park_after=0.01)
    await _populate(engine, clock)
    page = await engine.list_runs(status="completed", limit=2)
    assert page.next_cursor is not None
    capsys.readouterr()
    assert await cli("runs", "list", "--db", db_url, "--status", "failed", "--cursor",
                     page.next_cursor) == 2
    assert "continues a query with other filters" in capsys.readouterr().err


async def test_runs_show_json_has_everything(make_engine: Any, db_url: str,
                                             clock: VirtualClock, capsys: Any) -> None:
    engine = await make_engine(order, waits, family, clock=clock, park_after=0.01)
    fam = await engine.start(family, 2, id="fam", tags={"team": "a"})
    assert await fam.result(timeout=10) == 2
    await wait_for_status(await engine.start(waits, 1, id="w"), "waiting")
    failed = await engine.start(order, 3, id="bad")
    await wait_for_status(failed, "failed")
    capsys.readouterr()

    assert await cli("runs", "show", "fam", "--db", db_url, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tags"] == {"team": "a"} and doc["children"] == ["kid-2"]
    assert doc["arguments"] == {"n": 2} and doc["result"] == 2 and doc["error"] is None
    assert [e["kind"] for e in doc["journal"]] == ["child", "join"]
    assert await cli("runs", "show", "kid-2", "--db", db_url, "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["parent_id"] == "fam"

    assert await cli("runs", "show", "bad", "--db", db_url, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "failed" and "card 3 declined" in doc["error"]["message"]
    assert "Traceback (most recent call last)" in doc["error"]["traceback"]
    assert await cli("runs", "show", "bad", "--db", db_url) == 0
    out = capsys.readouterr().out
    assert "Traceback (most recent call last)" in out and "card 3 declined" in out

    assert await cli("runs", "show", "w", "--db", db_url, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "waiting" and doc["wake_at"].endswith("Z")
    assert doc["waiting_for"] == "waiting for signal 'go'"
    [wait] = doc["journal"]
    assert wait["kind"] == "signal" and wait["due_at"] == doc["wake_at"]  # the timeout
    assert await cli("runs", "show", "fam", "--db", db_url) == 0
    out = capsys.readouterr().out
    assert "children   kid-2" in out and "tags       team=a" in out


async def test_bulk_cancel_counts_confirms_and_batches(make_engine: Any, db_url: str,
                                                       clock: VirtualClock,
                                                       capsys: Any) -> None:
    engine = await make_engine(order, waits, clock=clock, park_after=0.01)
    for i in range(5):
        await wait_for_status(await engine.start(waits, i, id=f"w{i}",
                                                 tags={"batch": "x" if i < 4 else "y"}),
                              "waiting")
    await (await engine.start(order, 1, id="done", tags={"batch": "x"})).result(timeout=10)
    capsys.readouterr()
    # No filter at all is refused; a finished status makes no sense for a cancel.
    assert await cli("runs", "cancel", "--db", db_url) == 2
    assert "give a filter" in capsys.readouterr().err
    assert await cli("runs", "cancel", "--db", db_url, "--where", "status=completed") == 2
    assert "applies to blocked, pending, running, waiting runs" in capsys.readouterr().err

    assert await cli("runs", "cancel", "--db", db_url, "--where", "tag.batch=x", "--yes",
                     "--batch", "3") == 0
    out = capsys.readouterr().out
    assert out.startswith("4 run(s) match (status=blocked,pending,running,waiting "
                          "tag.batch=x)")
    assert "so far" in out and "done: cancellation requested for 4 run(s)" in out
    for i in range(4):
        await wait_for_status(engine.handle(f"w{i}"), "cancelled")
    assert (await engine.status("w4")).status == "waiting"
    assert (await engine.status("done")).status == "completed"
    # Again: nothing left to do.
    assert await cli("runs", "cancel", "--db", db_url, "--where", "tag.batch=x", "-y") == 0
    assert "nothing to cancel" in capsys.readouterr().out


async def test_bulk_resume_is_safe_to_interrupt_and_run_again(
        make_engine: Any, db_url: str, capsys: Any, monkeypatch: Any) -> None:
    engine = await make_engine(order)
    for i in range(6):
        await wait_for_status(await engine.start(order, 3 + 4 * i, id=f"f{i}"), "failed")
    await engine.close()  # no worker: resumed runs stay pending where we can see them
    capsys.readouterr()
    real = Engine.resume
    calls = 0

    async def interrupted(self: Engine, run_id: str) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt  # Ctrl-C between two runs
        return await real(self, run_id)

    monkeypatch.setattr(Engine, "resume", interrupted)
    assert await cli("runs", "resume", "--db", db_url, "--where", "workflow=order", "--yes",
                     "--batch", "2") == 130
    captured = capsys.readouterr()
    assert "interrupted: resumed 3 run(s); run the same command again" in captured.err
    monkeypatch.setattr(Engine, "resume", real)
    assert await cli("runs", "resume", "--db", db_url, "--where", "workflow=order",
                     "--yes") == 0
    out = capsys.readouterr().out
    assert out.startswith("3 run(s) match") and "done: resumed 3 run(s)" in out
    client = Engine(db_url, worker=False)
    async with client:
        assert await client.count_runs(status="pending") == 6
        assert await client.count_runs(status="failed") == 0


@pytest.mark.sqlite_only
def test_bulk_asks_on_a_terminal_and_refuses_without_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ask.db'}"

    async def make() -> None:
        async with Engine(url, workflows=[order]) as engine:
            await wait_for_status(await engine.start(order, 3, id="f"), "failed")

    asyncio.run(make())
    base = [sys.executable, "-m", "perdure", "runs", "resume", "--db", url, "--where",
            "workflow=order"]
    proc = subprocess.run(base, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    for answer, code, said in (("n", 1, "nothing done"), ("y", 0, "done: resumed 1 run(s)")):
        leader, follower = os.openpty()  # a terminal to ask on
        try:
            child = subprocess.Popen(base, stdin=follower, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=REPO)
            os.write(leader, f"{answer}\n".encode())
            out, err = child.communicate(timeout=60)
        finally:
            os.close(leader)
            os.close(follower)
        assert child.returncode == code, err
        assert said in out


async def test_runs_prune_deletes_or_counts(make_engine: Any, db_url: str, capsys: Any
                                            ) -> None:
    # The command measures age on the real clock: these runs are ten days old by it.
    clock = VirtualClock(time.time() - 10 * DAY)
    engine = await make_engine(order, waits, clock=clock, park_after=0.01)
    await _populate(engine, clock)
    capsys.readouterr()
    assert await cli("runs", "prune", "--db", db_url, "--older-than", "20d") == 0
    assert capsys.readouterr().out.strip() == "pruned 0 finished run(s) older than 20d"
    assert await cli("runs", "prune", "--db", db_url, "--older-than", "1d", "--status",
                     "failed", "--dry-run") == 0
    assert capsys.readouterr().out.strip() == (
        "2 failed run(s) older than 1d would be pruned (dry run: nothing deleted)")
    assert await engine.count_runs() == 10
    assert await cli("runs", "prune", "--db", db_url, "--older-than", "1d", "--status",
                     "failed") == 0
    assert capsys.readouterr().out.strip() == "pruned 2 failed run(s) older than 1d"
    assert await engine.count_runs() == 8  # 6 completed, 2 waiting
    assert await cli("runs", "prune", "--db", db_url, "--older-than", "1d12h") == 0
    assert capsys.readouterr().out.strip() == "pruned 6 finished run(s) older than 1d12h"
    assert sorted(r.id for r in await engine.list_runs()) == ["w0", "w1"]


@pytest.mark.parametrize("args, message", [
    (["--older-than", "30"], "'30' is not a duration"),
    (["--older-than", "a while"], "is not a duration"),
    (["--older-than", "30d", "--status", "waiting"], "invalid choice: 'waiting'"),
    ([], "the following arguments are required: --older-than"),
])
async def test_runs_prune_mistakes(make_engine: Any, db_url: str, capsys: Any,
                                   args: list[str], message: str) -> None:
    await make_engine(order)
    with pytest.raises(SystemExit) as done:
        await cli("runs", "prune", "--db", db_url, *args)
    assert done.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", [
    ["runs", "list"], ["runs", "list", "--status", "failed", "--json"], ["runs", "show", "x"],
    ["runs", "cancel", "--all", "--yes"], ["runs", "resume", "--all", "--yes"],
    ["runs", "prune", "--older-than", "1d"], ["signal", "x", "go"], ["cancel", "x"],
    ["resume", "x"],
])
def test_read_only_commands_never_create_a_database(tmp_path: Path, capsys: Any,
                                                    command: list[str]) -> None:
    path = tmp_path / "typo.db"
    assert main([*command, "--db", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"perdure: InvalidConfiguration: no SQLite database at '{path}' "
                          "(nothing was created)"), err
    assert not path.exists() and list(tmp_path.iterdir()) == []
    # The default database, in the current directory, is not created either.
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(command) == 2
        assert "no SQLite database at 'perdure.db'" in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []
    finally:
        os.chdir(cwd)
    assert main(["migrate", "--db", f"sqlite:///{path}"]) == 0  # migrate does create it
    assert path.exists()
