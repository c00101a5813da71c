"""Replay tests against real histories: ``perdure runs export`` writes journals as versioned
JSON, and ``perdure.testing.replay`` replays them against changed code without executing
anything, naming the run, the seq and what differs."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import perdure
from perdure import JournalFormatError, ReplayMismatch, VirtualClock, step, workflow
from perdure.cli.main import main
from perdure.testing import replay, wait_for_status

executed: list[str] = []


def _named(name: str) -> Any:
    async def act(order: str) -> str:
        executed.append(name)
        return f"{name} {order}"

    return step(name=name)(act)


reserve, charge, ship, audit, hold = (_named(n) for n in ("reserve", "charge", "ship",
                                                          "audit", "hold"))


@workflow(name="shipping")
async def shipping(order: str) -> list[str]:
    done = [await reserve(order)]
    await perdure.sleep(timedelta(hours=1))
    done.append(await charge(order))
    await perdure.wait_for_signal("approved")
    done.append(await ship(order))
    return done


@workflow(name="shipping")
async def reordered(order: str) -> list[str]:
    done = [await charge(order)]
    await perdure.sleep(timedelta(hours=1))
    done.append(await reserve(order))
    await perdure.wait_for_signal("approved")
    return [*done, await ship(order)]


@workflow(name="shipping")
async def renamed(order: str) -> list[str]:
    done = [await hold(order)]
    await perdure.sleep(timedelta(hours=1))
    done.append(await charge(order))
    await perdure.wait_for_signal("approved")
    return [*done, await ship(order)]


@workflow(name="shipping")
async def without_the_wait(order: str) -> list[str]:
    done = [await reserve(order)]
    done.append(await charge(order))
    await perdure.wait_for_signal("approved")
    return [*done, await ship(order)]


@workflow(name="shipping")
async def patched(order: str) -> list[str]:
    done = [await reserve(order)]
    if perdure.patched("audit-before-charge"):
        done.append(await audit(order))
    await perdure.sleep(timedelta(hours=1))
    done.append(await charge(order))
    await perdure.wait_for_signal("approved")
    return [*done, await ship(order)]


@workflow(name="shipping")
async def one_more_step(order: str) -> list[str]:
    done = await shipping.fn(order)
    return [*done, await audit(order)]


@workflow
async def unrelated() -> None:
    return None


@pytest.fixture
async def exported(make_engine: Any, db_url: str, tmp_path: Path,
                   clock: VirtualClock) -> dict[str, Path]:
    """Yesterday's runs, exported: two finished, one waiting for its signal."""
    engine = await make_engine(shipping, unrelated, clock=clock, park_after=0.1)
    for order in ("o-1", "o-2", "o-3"):
        handle = await engine.start(shipping, order, id=order)
        await wait_for_status(handle, "waiting")
    clock.advance(timedelta(hours=2))
    for order in ("o-1", "o-2"):
        await engine.signal(order, "approved")
        await engine.handle(order).result(timeout=10)
    await wait_for_status(engine.handle("o-3"), "waiting")
    await (await engine.start(unrelated)).result(timeout=10)
    one, bulk = tmp_path / "o-1.json", tmp_path / "exports" / "shipping.json"
    bulk.parent.mkdir()
    argv = ["runs", "export", "o-1", "--out", str(one), "--db", db_url]
    assert await asyncio.to_thread(main, argv) == 0
    argv = ["runs", "export", "--workflow", "shipping", "--limit", "10", "--out", str(bulk),
            "--db", db_url]
    assert await asyncio.to_thread(main, argv) == 0
    executed.clear()
    return {"one": one, "bulk": bulk, "dir": bulk.parent}


async def test_the_export_is_versioned_json(exported: dict[str, Path]) -> None:
    data = json.loads(exported["one"].read_text())
    assert (data["format"], data["format_version"]) == ("perdure.journal", 1)
    [run] = data["runs"]
    assert (run["id"], run["workflow"], run["version"], run["status"]) == (
        "o-1", "shipping", "1", "completed")
    assert [(e["seq"], e["kind"], e["name"]) for e in run["journal"]] == [
        (0, "step", "reserve"), (1, "sleep", "sleep"), (2, "step", "charge"),
        (3, "signal", "approved"), (4, "step", "ship")]
    bulk = json.loads(exported["bulk"].read_text())
    assert sorted(r["id"] for r in bulk["runs"]) == ["o-1", "o-2", "o-3"]


async def test_the_same_code_replays_and_nothing_executes(exported: dict[str, Path]) -> None:
    report = replay(shipping, [exported["one"], exported["dir"]])
    assert sorted(report.replayed) == ["o-1", "o-1", "o-2", "o-3"]
    assert executed == []
    assert sorted(replay(unrelated, exported["bulk"]).skipped) == ["o-1", "o-2", "o-3"]


async def test_a_patched_change_replays(exported: dict[str, Path]) -> None:
    assert len(replay(patched, exported["bulk"]).replayed) == 3
    assert executed == []


@pytest.mark.parametrize(("code", "seq", "differs"), [
    (reordered, 0, "the journal recorded step 'reserve' but the code now calls step 'charge'"),
    (renamed, 0, "the journal recorded step 'reserve' but the code now calls step 'hold'"),
    (without_the_wait, 1, "the journal recorded sleep 'sleep' but the code now calls step "
                          "'charge'"),
    (one_more_step, 5, "the code goes on with step 'audit', but the recorded run completed"),
])
async def test_a_change_that_breaks_old_runs_is_caught(
        exported: dict[str, Path], code: Any, seq: int, differs: str) -> None:
    with pytest.raises(ReplayMismatch) as caught:
        replay(code, exported["one"])
    error = caught.value
    assert (error.run_id, error.seq, error.path) == ("o-1", seq, str(exported["one"]))
    assert differs in error.reason
    assert f"run 'o-1' (from {exported['one']}) does not replay at seq {seq}" in str(error)
    assert executed == []


async def test_replay_works_without_an_event_loop_too(exported: dict[str, Path]) -> None:
    report = await asyncio.to_thread(replay, [shipping, unrelated], exported["dir"])
    assert len(report.replayed) == 3


async def test_an_unfinished_run_may_end_where_its_journal_ends(
        exported: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads(exported["bulk"].read_text())
    data["runs"] = [r for r in data["runs"] if r["id"] == "o-3"]
    waiting = tmp_path / "o-3.json"
    waiting.write_text(json.dumps(data))
    assert data["runs"][0]["status"] == "waiting"
    # o-3 waits for its signal: code that goes on past that point is not judged ...
    assert replay(one_more_step, waiting).replayed == ["o-3"]
    # ... but code that stops short of what it recorded is.
    with pytest.raises(ReplayMismatch, match=r"the code ends after 2 operation\(s\), but the "
                                             r"journal holds step .charge. at seq 2"):
        replay(_stops_early, waiting)


@workflow(name="shipping")
async def _stops_early(order: str) -> list[str]:
    done = [await reserve(order)]
    await perdure.sleep(timedelta(hours=1))
    return done


def test_files_of_an_unknown_format_are_refused(tmp_path: Path) -> None:
    cases = {
        "future.json": json.dumps({"format": "perdure.journal", "format_version": 2,
                                   "runs": []}),
        "other.json": json.dumps({"format": "something else", "format_version": 1}),
        "garbage.json": "{not json",
        "broken.json": json.dumps({"format": "perdure.journal", "format_version": 1,
                                   "runs": [{"id": "x"}]}),
    }
    messages = {"future.json": "format version 2; this Perdure reads version 1",
                "other.json": "not a Perdure journal export",
                "garbage.json": "not JSON",
                "broken.json": "run #0 is malformed"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(JournalFormatError, match=messages[name]):
            replay(shipping, tmp_path / name)
    with pytest.raises(FileNotFoundError):
        replay(shipping, tmp_path / "missing.json")


async def test_export_errors(make_engine: Any, db_url: str, capsys: Any) -> None:
    await make_engine(shipping)
    assert await asyncio.to_thread(main, ["runs", "export", "nope", "--db", db_url]) == 2
    assert "RunNotFound" in capsys.readouterr().err
    argv = ["runs", "export", "x", "--workflow", "shipping", "--db", db_url]
    assert await asyncio.to_thread(main, argv) == 2
    assert "not both" in capsys.readouterr().err
    argv = ["runs", "export", "--limit", "0", "--db", db_url]
    assert await asyncio.to_thread(main, argv) == 2
    assert "limit must be a positive int" in capsys.readouterr().err


async def _undo(order: str) -> None:
    executed.append("undo")


@step(name="book", compensate=_undo)
async def book(order: str) -> str:
    return order


@step(name="book")
async def book_without_undo(order: str) -> str:
    return order


@step(name="fly", max_attempts=1)
async def fly(order: str) -> str:
    raise RuntimeError("grounded")


@workflow(name="trip")
async def trip(order: str) -> str:
    await book(order)
    return await fly(order)


@workflow(name="trip")
async def trip_without_undo(order: str) -> str:
    await book_without_undo(order)
    return await fly(order)


@workflow(name="trip")
async def trip_that_recovers(order: str) -> str:
    await book(order)
    try:
        return await fly(order)
    except perdure.StepFailed:
        return "stayed home"


@workflow(name="looping")
async def looping(n: int) -> int:
    await reserve(str(n))
    if n < 3:
        raise perdure.ContinueAsNew(n + 1)
    await perdure.wait_for_signal("stop")
    return n


async def test_sagas_and_continued_runs_replay(make_engine: Any, tmp_path: Path) -> None:
    engine = await make_engine(trip, looping, park_after=0.1)
    with pytest.raises(perdure.WorkflowFailed):
        await (await engine.start(trip, "t", id="t")).result(timeout=10)
    loop = await engine.start(looping, 0, id="l")
    await wait_for_status(loop, "waiting")
    assert (await loop.status()).incarnation == 3
    path = tmp_path / "runs.json"
    from perdure.engine.histories import document

    runs = await engine.export_runs(["t", "l"])
    path.write_text(json.dumps(document(runs, exported_at=0.0)))
    executed.clear()
    assert replay([trip, looping], path).replayed == ["t", "l"]
    assert executed == []
    with pytest.raises(ReplayMismatch, match="holds compensation 'book' at seq 2"):
        replay([trip_without_undo, looping], path)
    with pytest.raises(ReplayMismatch, match="the code returns, but the recorded run failed"):
        replay([trip_that_recovers, looping], path)
