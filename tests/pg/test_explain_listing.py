"""Plan regression for finding runs and pruning them: at a million runs (1.1 million tags),
a tag lookup, a page of the runs list, a parent's children and a retention batch are each
served by their index — as a custom plan and as the generic plan a prepared statement
switches to. A Seq Scan of any Perdure table anywhere in the plan is a regression.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from perdure.engine.listing import RunFilter
from perdure.storage.port import RunQuery
from perdure.storage.postgres.adapter import PostgresStorage
from perdure.storage.postgres.config import compiled_queries
from tests.pg.million import ROWS
from tests.pg.test_explain import _literal, _nodes

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
async def conn(million_runs: str) -> AsyncIterator[Any]:
    import asyncpg

    c = await asyncpg.connect(million_runs)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def big_db(million_runs: str) -> str:
    return million_runs


async def _plan(conn: Any, name: str, params: dict[str, Any], *, generic: bool
                ) -> list[dict[str, Any]]:
    store = PostgresStorage("postgresql://unused/db")
    sql, names = compiled_queries(store.qualified_prefix)[name]
    args = [params[n] if n in params else store._common[n] for n in names]
    if generic:
        # A prepared statement's generic plan: what asyncpg's cached statements may run.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE q AS {sql}")
        try:
            values = ", ".join(_pg_literal(a) for a in args)
            raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE q({values})")
        finally:
            await conn.execute("DEALLOCATE q")  # not ALL: asyncpg's own statements stay
            await conn.execute("RESET plan_cache_mode")
    else:
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    doc = json.loads(raw) if isinstance(raw, str) else raw
    return list(_nodes(doc[0]["Plan"]))


def _pg_literal(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "'Infinity'::float8" if value > 0 else "'-Infinity'::float8"
    if isinstance(value, list) and not value:
        return "ARRAY[]::text[]"
    return _literal(value)


def _check(nodes: list[dict[str, Any]], *indexes: str) -> None:
    scans = [(n["Node Type"], n.get("Index Name"), n.get("Relation Name")) for n in nodes]
    seq = [s for s in scans if s[0] == "Seq Scan" and str(s[2]).startswith("perdure_")]
    assert not seq, f"sequential scan: {scans}"
    used = {s[1] for s in scans if s[0] in ("Index Scan", "Index Only Scan",
                                             "Bitmap Index Scan")}
    for index in indexes:
        assert index in used, f"{index} not used: {scans}"


def _params(where: RunFilter, *, cursor: tuple[float, str] | None = None) -> dict[str, Any]:
    query = where.query(limit=51)
    if cursor is not None:
        query = RunQuery(**{**{f: getattr(query, f) for f in query.__dataclass_fields__},
                            "before_at": cursor[0], "before_id": cursor[1]})
    store = PostgresStorage("postgresql://unused/db")
    return store._list_query(query)[1]


GENERIC = pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])


@GENERIC
async def test_a_tag_lookup_walks_the_tag_index(conn: Any, generic: bool) -> None:
    params = _params(RunFilter.of(tags={"customer": "c-4242"}))
    _check(await _plan(conn, "list_runs_tagged", params, generic=generic),
           "perdure_tags_lookup", "perdure_runs_pkey")
    # A common tag with more filters and a cursor deep in the list: still the index, in order.
    params = _params(RunFilter.of(tags={"plan": "pro", "customer": "c-20"}, status="completed",
                                  workflow="wf1"), cursor=(time.time() - 500_000, "r500000"))
    nodes = await _plan(conn, "list_runs_tagged", params, generic=generic)
    _check(nodes, "perdure_tags_lookup", "perdure_runs_pkey")
    assert not any(n["Node Type"] == "Sort" for n in nodes), "the tag index gives the order"


@GENERIC
async def test_the_runs_list_walks_the_creation_index(conn: Any, generic: bool) -> None:
    for where in (RunFilter(), RunFilter.of(version="1"), RunFilter.of(workflow="wf2")):
        nodes = await _plan(conn, "list_runs", _params(where, cursor=(time.time() - 1000,
                                                                      "r1000")),
                            generic=generic)
        _check(nodes, "perdure_runs_created")
        assert not any(n["Node Type"] == "Sort" for n in nodes)
    # A rare status may be found through the retention index instead: never a scan.
    _check(await _plan(conn, "list_runs", _params(RunFilter.of(status="failed")),
                       generic=generic))


@GENERIC
async def test_a_parents_children_come_from_the_parent_index(conn: Any, generic: bool
                                                             ) -> None:
    nodes = await _plan(conn, "list_runs_children", _params(RunFilter.of(parent="r4999")),
                        generic=generic)
    _check(nodes, "perdure_runs_parent")


@GENERIC
async def test_a_retention_batch_finds_its_runs_by_index(conn: Any, generic: bool) -> None:
    now = time.time()
    # The oldest thousandth of the table is due: a pass that keeps up finds a thin slice.
    cut = {"completed_before": now - 999_000, "failed_before": now - 999_000,
           "cancelled_before": None, "limit": 200}
    _check(await _plan(conn, "prunable", cut, generic=generic), "perdure_runs_finished")
    ids = [f"r{g}" for g in range(999_000, 999_200)]
    _check(await _plan(conn, "prune_runs", {"ids": ids}, generic=generic),
           "perdure_runs_pkey")
    children = sorted(n for n in compiled_queries("perdure_") if n.startswith("prune_child_"))
    assert "prune_child_tags" in children and "prune_child_signals" in children
    # The per-run tables are empty here: whether PostgreSQL *can* find a run's rows by an
    # index is what matters (with seq scans off, a table without one still shows a Seq Scan).
    await conn.execute("SET enable_seqscan = off")
    try:
        for name in children:
            _check(await _plan(conn, name, {"ids": ids}, generic=generic))
    finally:
        await conn.execute("RESET enable_seqscan")


async def test_a_tag_page_at_a_million_runs_is_fast(conn: Any, big_db: str) -> None:
    """Not a benchmark: a sanity bound that would catch a plan gone to a scan."""
    store = PostgresStorage(big_db)
    await store.open()
    try:
        query = RunFilter.of(tags={"plan": "pro"}).query(limit=51)
        started = time.monotonic()
        for _ in range(10):
            rows = await store.list_runs(query)
            assert len(rows) == 51
        elapsed = (time.monotonic() - started) / 10
        print(f"\na page of 50 runs by tag among {ROWS}: {elapsed * 1000:.1f} ms")
        assert elapsed < 0.5
        assert await store.count_runs(RunFilter.of(tags={"customer": "c-5"}).query(
            limit=1)) == 10
    finally:
        await store.close()
