"""Plan regression: at a million runs, the hot queries are served by their indexes.

The table is the session's ``million_runs`` database (tests/pg/million.py: mostly finished
history, some timers, some pending, some running with leases, three workflow keys), analyzed;
then each query is EXPLAINed with real parameters, both as a custom plan and as the generic
plan a prepared statement switches to after a few executions. A Seq Scan on the runs table
anywhere in the plan is a regression.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from perdure.storage.postgres.adapter import PostgresStorage
from perdure.storage.postgres.config import compiled_queries
from tests.pg.million import KEYS, ROWS

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]


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


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _plan(conn: Any, name: str, params: dict[str, Any], *, generic: bool
                ) -> list[dict[str, Any]]:
    store = PostgresStorage("postgresql://unused/db")
    sql, names = compiled_queries(store.qualified_prefix)[name]
    args = [params[n] if n in params else store._common[n] for n in names]
    if generic:
        # A prepared statement's generic plan: what asyncpg's cached statements may run.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute("DEALLOCATE ALL")
        await conn.execute(f"PREPARE q AS {sql}")
        values = ", ".join(_literal(a) for a in args)
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE q({values})")
    else:
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    doc = json.loads(raw) if isinstance(raw, str) else raw
    return list(_nodes(doc[0]["Plan"]))


def _literal(value: Any) -> str:
    """SQL text for a test parameter (EXECUTE takes no bound parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, list):
        kind = "int" if value and isinstance(value[0], int) else "text"
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + f"]::{kind}[]"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _check(nodes: list[dict[str, Any]], *indexes: str) -> None:
    scans = [(n["Node Type"], n.get("Index Name"), n.get("Relation Name")) for n in nodes]
    seq = [s for s in scans if s[0] == "Seq Scan" and s[2] == "perdure_runs"]
    assert not seq, f"sequential scan of runs: {scans}"
    used = {s[1] for s in scans if s[0] in ("Index Scan", "Index Only Scan",
                                             "Bitmap Index Scan")}
    for index in indexes:
        assert index in used, f"{index} not used: {scans}"


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_claim_uses_the_due_and_lease_indexes(conn: Any, generic: bool) -> None:
    now = time.time()
    nodes = await _plan(conn, "claim", {"worker": "w", "keys": KEYS, "limit": 64, "now": now,
                                        "lease_until": now + 10, "caps": [],
                                        "due_by": now + 1.0},
                        generic=generic)
    _check(nodes, "perdure_runs_due", "perdure_runs_leased", "perdure_runs_pkey")
    # It locks rows, skipping those other workers hold.
    assert any(n["Node Type"] == "LockRows" for n in nodes)


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_next_wake_uses_the_due_and_lease_indexes(conn: Any, generic: bool) -> None:
    nodes = await _plan(conn, "next_wake", {"keys": KEYS, "caps": []}, generic=generic)
    _check(nodes, "perdure_runs_due", "perdure_runs_leased")


@pytest.mark.parametrize("name", ["heartbeat", "cancel_flags", "pause_flags",
                                  "expire_worker"])
async def test_per_worker_queries_use_the_owner_index(conn: Any, name: str) -> None:
    now = time.time()
    nodes = await _plan(conn, name, {"worker": "w3", "lease_until": now + 10, "now": now,
                                     "host": "h", "pid": 1, "pid_start": None,
                                     "runs": ["r1", "r2"], "serves": KEYS,
                                     "labels": None},
                        generic=True)
    # A heartbeat renews only the runs it names: the primary key finds them.
    _check(nodes, "perdure_runs_pkey" if name == "heartbeat" else "perdure_runs_owner")


#: the journal entry parameters of a workflow-side talk write
ENTRY: dict[str, Any] = {"run_id": "r5", "epoch": 1, "worker": "w", "seq": 3, "kind": "event",
                         "name": "k", "status": "completed", "attempts": 1, "output": "1",
                         "error": None, "due_at": None, "started_at": None,
                         "finished_at": 1.0}

PER_RUN: dict[str, dict[str, Any]] = {
    "get_run": {"id": "r5"},
    "finish_run": {"run_id": "r5", "epoch": 1, "worker": "w", "status": "completed",
                   "output": None, "error": None},
    "park_lock": {"run_id": "r5", "epoch": 1, "worker": "w"},
    "park_run": {"run_id": "r5", "epoch": 1, "worker": "w", "status": "waiting",
                 "wake_at": None, "error": None, "waiting_for": ["signal:x", "child:r7"]},
    "send_signal": {"run_id": "r5", "name": "x", "payload": "1", "key": None},
    "consume_signal": {"run_id": "r5", "epoch": 1, "worker": "w", "seq": 3, "name": "x",
                       "retry": False},
    "request_cancel": {"run_id": "r5"},
    "admin_transition": {"run_id": "r5", "status": "pending", "from_status": "failed",
                         "seqs": [1, 2], "bump": 1},
    # talking to runs
    "set_event": {**ENTRY, "key": "k", "value": "1"},
    "get_events": {"run_id": "r5", "key": None},
    "write_stream": {**ENTRY, "stream": "s", "position": 3, "value": "1"},
    "read_stream": {"run_id": "r5", "stream": "s", "offset": 0, "limit": 256},
    "send_request": {"run_id": "r5", "request_id": "q", "name": "x", "payload": "1"},
    "consume_request": {"run_id": "r5", "epoch": 1, "worker": "w", "seq": 3, "name": "x",
                        "retry": False},
    "reply_request": {**ENTRY, "request_id": "q", "reply": "1", "reply_error": None},
    "request_state": {"run_id": "r5", "request_id": "q"},
    "create_callback": {**ENTRY, "token": "t"},
    "complete_callback": {"token": "t", "value": "1", "error": None},
    "continue_run": {"run_id": "r5", "epoch": 1, "worker": "w", "version": "2",
                     "input": "[]"},
    "fork_run": {"id": "f5", "source": "r5", "upto": 3},
    "request_pause": {"run_id": "r5"},
    "unpause": {"run_id": "r5"},
}


@pytest.mark.parametrize("name", ["stranded_summary", "stranded_runs"])
@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_stranded_runs_are_found_without_reading_the_history(
        conn: Any, name: str, generic: bool) -> None:
    nodes = await _plan(conn, name, {"live_after": time.time() - 30, "workflow": None,
                                     "limit": 100}, generic=generic)
    _check(nodes, "perdure_runs_unfinished")


@pytest.mark.parametrize("name", sorted(PER_RUN))
async def test_per_run_statements_use_the_primary_key(conn: Any, name: str) -> None:
    nodes = await _plan(conn, name, {**PER_RUN[name], "now": time.time()}, generic=True)
    _check(nodes, "perdure_runs_pkey")


async def test_claim_at_a_million_rows_is_fast(conn: Any, big_db: str) -> None:
    """Not a benchmark: a sanity bound that would catch a plan gone quadratic."""
    store = PostgresStorage(big_db)
    await store.open()
    try:
        now = time.time()
        started = time.monotonic()
        for _ in range(10):
            claimed = await store.claim(worker="x", keys=KEYS, limit=64, now=now,
                                        lease_until=now + 30)
            assert len(claimed) == 64
        elapsed = (time.monotonic() - started) / 10
        print(f"\nclaim of 64 runs among {ROWS}: {elapsed * 1000:.1f} ms")
        assert elapsed < 0.5
        assert await store.next_wake(KEYS) is not None
    finally:
        await store.close()


# -- flow control ---------------------------------------------------------------------------

FLOW: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # the lines: a queue's claim reads its line and counts its running runs by index
    "queue_claim": ({"queue": "q1", "scope": "queue:q1", "worker": "w3", "limit": 64,
                     "scan": 256, "keys": KEYS, "caps": ["gpu"], "keep": 60.0},
                    ("perdure_runs_line", "perdure_runs_queue_running")),
    "routed_claim": ({"worker": "w3", "limit": 64, "keys": KEYS, "caps": ["gpu"]},
                     ("perdure_runs_line",)),
    "flow_lock_queues": ({"keys": KEYS, "queues": ["q0", "q1", "q2"], "caps": ["gpu"]},
                         ("perdure_runs_flow_due", "perdure_queues_pkey")),
    "flow_next_wake": ({"keys": KEYS, "queues": ["q0", "q1", "q2"], "caps": ["gpu"]},
                       ("perdure_runs_flow_due",)),
    "queue_stats": ({"live_since": 0.0},
                    ("perdure_runs_line", "perdure_runs_queue_running",
                     "perdure_runs_queue_waiting")),
    "holds_in_use": ({"name": "gpu"}, ()),
    "wake_waiters": ({"name": "gpu", "free": 2}, ()),
    "insert_run": ({"id": "new", "workflow": "wf1", "version": "1", "wf_key": KEYS[1],
                    "status": "pending", "input": "[]", "wake_at": None, "reason": None,
                    "parent_id": None, "parent_seq": None, "deadline": None, "queue": "q1",
                    "key": "k7", "priority": 0, "share": 1.0, "requires": None,
                    "debounce": False, "trace_context": None, "tags": None, "tag_keys": [],
                    "tag_values": []}, ("perdure_runs_pkey",)),
}


@pytest.mark.parametrize("name", sorted(FLOW))
async def test_flow_statements_use_their_indexes(conn: Any, name: str) -> None:
    params, indexes = FLOW[name]
    now = time.time()
    nodes = await _plan(conn, name, {"now": now, "lease_until": now + 10, **params},
                        generic=True)
    _check(nodes, *indexes)


async def test_a_queue_claim_at_a_million_rows_is_fast(conn: Any, big_db: str) -> None:
    """Not a benchmark: a sanity bound that would catch a plan gone quadratic."""
    store = PostgresStorage(big_db)
    await store.open()
    try:
        started = time.monotonic()
        for _ in range(10):
            got = await store.claim_flow(worker="x", keys=KEYS, queues=["q0", "q1", "q2"],
                                         caps=["gpu"], limit=64, clock=time.time, lease=30)
            assert len(got.runs) == 64
        elapsed = (time.monotonic() - started) / 10
        print(f"\nclaim of 64 queued runs among {ROWS}: {elapsed * 1000:.1f} ms")
        assert elapsed < 0.5
    finally:
        await store.close()


#: the dashboard's overview and its lists of runs in flight (migration 0021)
OVERVIEW: dict[str, tuple[dict[str, Any], str]] = {
    "unfinished_counts": ({}, "perdure_runs_in_flight"),
    "activity_started": ({"since": 0.0, "until": 3600.0, "bucket": 60.0},
                         "perdure_runs_created"),
    "activity_finished": ({"since": 0.0, "until": 3600.0, "bucket": 60.0},
                          "perdure_runs_finished"),
    "list_runs_unfinished": ({"status": "waiting", "workflow": None, "version": None,
                              "before_at": 1e18, "before_id": "",
                              "after_at": -1e18, "limit": 51},
                             "perdure_runs_in_flight"),
    "list_workers": ({"limit": 100}, "perdure_runs_owner"),
}


@pytest.mark.parametrize("name", sorted(OVERVIEW))
@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_the_overview_reads_index_ranges_only(conn: Any, name: str,
                                                    generic: bool) -> None:
    params, index = OVERVIEW[name]
    now = time.time()
    if "since" in params:  # the last hour
        params = {**params, "since": now - 3600, "until": now}
    if generic and not params:
        pytest.skip("a statement without parameters has one plan")
    nodes = await _plan(conn, name, params, generic=generic)
    _check(nodes, index)
