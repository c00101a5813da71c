"""Finding runs: filters, tags, keyset pages under concurrent inserts, and bad queries — the
same on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    InvalidConfiguration,
    InvalidCursor,
    RunPage,
    RunStatus,
    VirtualClock,
    WorkflowFailed,
    workflow,
)
from perdure.testing import wait_for_status


@workflow
async def order(n: int) -> int:
    return n


@workflow(version="2")
async def invoice(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    return n


@workflow
async def waits() -> str:
    return str(await perdure.wait_for_signal("go"))


@workflow
async def family(n: int) -> int:
    child = await perdure.start_child(order, n, id=f"kid-{n}")
    return await child.result()


@workflow
async def tagging(customer: str) -> dict[str, str]:
    await perdure.set_tags(stage="received")
    now = await perdure.set_tags({"stage": "shipped", "customer": customer})
    assert now == {"stage": "shipped", "customer": customer, "plan": "pro"}
    return await perdure.set_tags(plan=None)


@workflow
async def too_many_tags() -> str:
    await perdure.set_tags({f"k{i}": "v" for i in range(20)})
    try:
        await perdure.set_tags({f"j{i}": "v" for i in range(20)})
    except InvalidConfiguration as exc:
        return f"refused: {exc}"
    return "accepted"


ALL = [order, invoice, waits, family, tagging, too_many_tags]


def ids(page: list[Any]) -> list[str]:
    return [r.id for r in page]


async def _populate(engine: Engine, clock: VirtualClock) -> None:
    """r0..r5: one second apart, mixed workflows, versions, statuses and tags."""
    plans = ["pro", "free", "pro", "pro", "free", "pro"]
    for i in range(6):
        wf = order if i % 2 == 0 else invoice
        arg = -1 if i == 3 else i
        await engine.start(wf, arg, id=f"r{i}",
                           tags={"customer": f"c-{i % 3}", "plan": plans[i]})
        clock.advance(1)
    for i in range(6):
        await wait_for_status(engine.handle(f"r{i}"), "completed", "failed")


async def test_each_filter_alone_and_together(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(*ALL, clock=clock)
    start = datetime.fromtimestamp(clock.time(), UTC)
    await _populate(engine, clock)
    assert ids(await engine.list_runs()) == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert ids(await engine.list_runs(status="failed")) == ["r3"]
    assert ids(await engine.list_runs(status=[RunStatus.FAILED, "completed"], limit=2)) == [
        "r5", "r4"]
    assert ids(await engine.list_runs(workflow="invoice")) == ["r5", "r3", "r1"]
    assert ids(await engine.list_runs(version="2")) == ["r5", "r3", "r1"]
    assert ids(await engine.list_runs(workflow="order", version="2")) == []
    assert ids(await engine.list_runs(tags={"customer": "c-0"})) == ["r3", "r0"]
    assert ids(await engine.list_runs(tags={"plan": "pro", "customer": "c-2"})) == ["r5", "r2"]
    assert ids(await engine.list_runs(tags={"plan": "pro"}, status="failed")) == ["r3"]
    assert ids(await engine.list_runs(tags={"plan": "gold"})) == []
    t2 = start + timedelta(seconds=2)
    assert ids(await engine.list_runs(created_after=t2)) == ["r5", "r4", "r3", "r2"]
    assert ids(await engine.list_runs(created_before=t2)) == ["r1", "r0"]
    assert ids(await engine.list_runs(created_after=t2, created_before=t2 + timedelta(
        seconds=2), workflow="order")) == ["r2"]
    assert await engine.count_runs() == 6
    assert await engine.count_runs(tags={"plan": "pro"}) == 4
    assert await engine.count_runs(status="completed", workflow="order") == 3
    info = (await engine.list_runs(tags={"customer": "c-1"}, limit=1))[0]
    assert info.tags == {"customer": "c-1", "plan": "free"} and info.id == "r4"


async def test_parent_filter_finds_the_children(make_engine: Any) -> None:
    engine = await make_engine(*ALL)
    handle = await engine.start(family, 7, id="fam")
    assert await handle.result(timeout=10) == 7
    assert ids(await engine.list_runs(parent="fam")) == ["kid-7"]
    assert ids(await engine.list_runs(parent_id="fam")) == ["kid-7"]  # the older name
    assert ids(await engine.list_runs(parent="fam", status="failed")) == []
    assert await engine.count_runs(parent="fam") == 1
    with pytest.raises(InvalidConfiguration, match="not both"):
        await engine.list_runs(parent="fam", parent_id="other")


async def test_pages_follow_the_cursor_to_the_end(make_engine: Any, clock: VirtualClock
                                                  ) -> None:
    engine = await make_engine(order, clock=clock)
    for i in range(25):
        await engine.start(order, i, id=f"p{i:02d}")
        if i % 3 == 0:
            clock.advance(1)  # some share a creation time: the id orders those
    seen: list[str] = []
    page = await engine.list_runs(limit=10)
    assert isinstance(page, RunPage) and isinstance(page, list) and len(page) == 10
    pages = 1
    while page.next_cursor is not None:
        seen += ids(page)
        page = await engine.list_runs(limit=10, cursor=page.next_cursor)
        pages += 1
    seen += ids(page)
    assert pages == 3 and len(page) == 5
    assert seen == sorted(seen, reverse=True) == [f"p{i:02d}" for i in range(24, -1, -1)]
    # A page that ends exactly at the last run says so: no empty page after it.
    exact = await engine.list_runs(limit=25)
    assert len(exact) == 25 and exact.next_cursor is None


async def test_pages_stay_stable_under_concurrent_inserts(make_engine: Any,
                                                          clock: VirtualClock) -> None:
    """Runs created while someone pages (newer ones, and ones with the very same creation
    time as the page boundary) never make a run appear twice nor be skipped."""
    engine = await make_engine(order, clock=clock)
    client = await make_engine(order, worker=False, clock=clock)
    for i in range(30):
        await engine.start(order, i, id=f"a{i:02d}")
        if i % 10 == 9:
            clock.advance(1)
    original = {f"a{i:02d}" for i in range(30)}
    inserted = 0

    async def insert_more() -> None:
        nonlocal inserted
        for _ in range(5):
            await client.start(order, 0, id=f"z{inserted:03d}")  # sorts after every a..
            await client.start(order, 0, id=f"a{inserted:02d}x")  # between two a..
            inserted += 1
            await asyncio.sleep(0)

    seen: list[str] = []
    cursor = None
    while True:
        page, _ = await asyncio.gather(engine.list_runs(limit=7, cursor=cursor),
                                       insert_more())
        seen += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a run was listed twice"
    assert original <= set(seen), f"skipped: {sorted(original - set(seen))}"
    assert inserted > 0


async def test_a_cursor_only_continues_its_own_query(make_engine: Any, clock: VirtualClock
                                                     ) -> None:
    engine = await make_engine(*ALL, clock=clock)
    await _populate(engine, clock)
    page = await engine.list_runs(tags={"plan": "pro", "customer": "c-0"}, limit=1)
    assert page.next_cursor is not None
    # The same filters, written in another order, are the same query.
    again = await engine.list_runs(tags={"customer": "c-0", "plan": "pro"}, limit=1,
                                   cursor=page.next_cursor)
    assert ids(again) == ["r3"] or ids(again) == ["r0"]
    with pytest.raises(InvalidCursor, match="other filters"):
        await engine.list_runs(tags={"plan": "pro"}, cursor=page.next_cursor)
    with pytest.raises(InvalidCursor, match="other filters"):
        await engine.list_runs(cursor=page.next_cursor)
    for bad in ["", "nonsense", "v1.", "v1.!!!", "v2." + page.next_cursor[3:],
                page.next_cursor[:-3], "v1.WzEsMiwzXQ"]:
        with pytest.raises(InvalidCursor):
            await engine.list_runs(cursor=bad)
    with pytest.raises(InvalidCursor):
        await engine.list_runs(cursor=42)  # type: ignore[arg-type]
    assert issubclass(InvalidCursor, InvalidConfiguration)


@pytest.mark.parametrize("filters, match", [
    ({"status": "finished"}, "unknown status 'finished'"),
    ({"status": ["completed", "nope"]}, "unknown status 'nope'"),
    ({"status": 3}, "unknown status 3"),
    ({"status": []}, "at least one status"),
    ({"limit": 0}, "limit must be an int from 1"),
    ({"limit": -1}, "limit must be an int from 1"),
    ({"limit": True}, "limit must be an int"),
    ({"limit": "5"}, "limit must be an int"),
    ({"tags": "customer=c-1"}, "mapping of str to str"),
    ({"tags": {"customer": 7}}, "must be a string"),
    ({"tags": {"customer": None}}, "must be a string"),
    ({"tags": {"": "x"}}, "non-empty"),
    ({"tags": {"k\x00": "x"}}, "NUL"),
    ({"tags": {"k": "x\ud800"}}, "surrogate"),
    ({"tags": {"k": "x" * 257}}, "at most 256"),
    ({"created_after": datetime(2024, 1, 1)}, "aware datetime"),
    ({"created_before": "2024-01-01"}, "aware datetime"),
    ({"workflow": ""}, "non-empty"),
    ({"version": "v\x00"}, "NUL"),
    ({"parent": 5}, "non-empty string"),
])
async def test_bad_queries_are_refused_with_a_typed_error(make_engine: Any,
                                                          filters: dict[str, Any],
                                                          match: str) -> None:
    engine = await make_engine(order)
    await (await engine.start(order, 1, id="kept")).result(timeout=10)
    with pytest.raises(InvalidConfiguration, match=match):
        await engine.list_runs(**filters)
    if "limit" not in filters:
        with pytest.raises(InvalidConfiguration, match=match):
            await engine.count_runs(**filters)
    assert ids(await engine.list_runs()) == ["kept"]


@pytest.mark.parametrize("tags, match", [
    ({f"k{i}": "v" for i in range(33)}, "at most 32 tags"),
    ({"k" * 65: "v"}, "at most 64"),
    ({"k": 1}, "must be a string"),
    (["k", "v"], "mapping"),
    ({"k": "\x00"}, "NUL"),
])
async def test_bad_tags_refuse_the_start(make_engine: Any, tags: Any, match: str) -> None:
    engine = await make_engine(order)
    with pytest.raises(InvalidConfiguration, match=match):
        await engine.start(order, 1, id="t", tags=tags)
    assert await engine.list_runs() == []


async def test_tags_set_inside_a_workflow_are_journaled_and_searchable(
        make_engine: Any) -> None:
    engine = await make_engine(*ALL)
    handle = await engine.start(tagging, "c-9", id="tg", tags={"plan": "pro"})
    assert await handle.result(timeout=10) == {"stage": "shipped", "customer": "c-9"}
    assert (await handle.status()).tags == {"stage": "shipped", "customer": "c-9"}
    assert ids(await engine.list_runs(tags={"stage": "shipped"})) == ["tg"]
    assert ids(await engine.list_runs(tags={"stage": "received"})) == []
    assert ids(await engine.list_runs(tags={"plan": "pro"})) == []  # removed
    kinds = [(e.kind, e.name) for e in await handle.journal()]
    assert kinds == [("tags", "set_tags")] * 3


async def test_set_tags_replays_without_writing_again(db_url: str) -> None:
    """A run that crashed after its tags were journaled replays them from the journal."""
    clock = VirtualClock()

    @workflow(name="tag_then_wait")
    async def tag_then_wait() -> dict[str, str]:
        tags = await perdure.set_tags(stage="one")
        await perdure.wait_for_signal("go")
        return tags

    first = Engine(db_url, workflows=[tag_then_wait], clock=clock, park_after=0.01)
    await first.open()
    handle = await first.start(tag_then_wait, id="crashy")
    await wait_for_status(handle, "waiting")
    await first.abort()
    second = Engine(db_url, workflows=[tag_then_wait], clock=clock, park_after=0.01)
    await second.open()
    try:
        await second.signal("crashy", "go")
        assert await second.handle("crashy").result(timeout=10) == {"stage": "one"}
        journal = await second.journal("crashy")
        assert [(e.seq, e.kind) for e in journal] == [(0, "tags"), (1, "signal")]
    finally:
        await second.close()


async def test_too_many_tags_inside_a_workflow_raise_at_the_call(make_engine: Any) -> None:
    engine = await make_engine(*ALL)
    result = await (await engine.start(too_many_tags, id="many")).result(timeout=10)
    assert result.startswith("refused: a run has at most 32 tags")
    assert len((await engine.status("many")).tags) == 20


async def test_a_repeated_start_keeps_the_first_tags(make_engine: Any) -> None:
    engine = await make_engine(waits)
    await engine.start(waits, id="same", tags={"a": "1"})
    await engine.start(waits, id="same", tags={"a": "2"})
    assert (await engine.status("same")).tags == {"a": "1"}
    assert ids(await engine.list_runs(tags={"a": "2"})) == []


def test_the_sync_engine_lists_pages_too(db_url: str) -> None:
    with perdure.SyncEngine(db_url, workflows=[order]) as engine:
        for i in range(3):
            engine.start(order, i, id=f"s{i}", tags={"k": "v"}).result(timeout=10)
        page = engine.list_runs(limit=2, tags={"k": "v"})
        assert len(page) == 2 and page.next_cursor is not None
        rest = engine.list_runs(limit=2, tags={"k": "v"}, cursor=page.next_cursor)
        assert len(rest) == 1 and rest.next_cursor is None
        assert engine.count_runs(tags={"k": "v"}) == 3


async def test_a_failed_run_lists_with_its_error(make_engine: Any) -> None:
    engine = await make_engine(invoice)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(invoice, -5, id="bad")).result(timeout=10)
    [info] = await engine.list_runs(status="failed")
    assert info.error is not None and info.error.type == "ValueError"
