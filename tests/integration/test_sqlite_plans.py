"""Plan regression on SQLite: at a million runs (1.1 million tags), a tag lookup, a page of
the runs list, a parent's children and a retention batch each search their index
(``EXPLAIN QUERY PLAN``); a ``SCAN`` of a Perdure table is a regression. Also with no
statistics at all (a database never analyzed), which is how most SQLite files live.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure.engine.listing import RunFilter
from perdure.storage.sqlfiles import queries
from perdure.storage.sqlite.adapter import SqliteStorage

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROWS = 1_000_000

FILL = """
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :rows)
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, epoch, wake_at,
                          parent_id, created_at, updated_at)
SELECT 'r' || n, 'wf' || (n % 3), '1', 'wf' || (n % 3) || char(31) || '1',
       CASE WHEN n % 100 < 90 THEN 'completed' WHEN n % 100 < 96 THEN 'waiting'
            WHEN n % 100 < 98 THEN 'pending' ELSE 'running' END, '[]', 1,
       CASE WHEN n % 100 >= 96 AND n % 100 < 98 THEN :now - (n % 600) END,
       CASE WHEN n % 50 = 0 THEN 'r' || (n - 1) END,
       :now - n, :now - n
FROM g
"""
TAGS = """
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :rows)
INSERT INTO perdure_tags (run_id, key, value, created_at)
SELECT 'r' || n, 'customer', 'c-' || (n % (:rows / 10)), :now - n FROM g
UNION ALL
SELECT 'r' || n, 'plan', CASE WHEN n % 20 = 0 THEN 'pro' ELSE 'free' END, :now - n
FROM g WHERE n % 10 = 0
"""


def _fill(path: Path, opened: Callable[[sqlite3.Connection], None]) -> None:
    """Create the million-run file at ``path`` (``opened`` gets the connection, to interrupt)."""

    async def migrate() -> None:
        store = SqliteStorage(str(path))
        await store.open()
        await store.close()

    asyncio.run(migrate())
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        opened(conn)
        conn.execute("PRAGMA synchronous = OFF")
        # Secondary indexes are built after the bulk insert; the plans see the very same ones.
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                               "tbl_name IN ('perdure_runs', 'perdure_tags') AND "
                               "sql IS NOT NULL").fetchall()
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        now = time.time()
        conn.execute(FILL, {"rows": ROWS, "now": now})
        conn.execute(TAGS, {"rows": ROWS, "now": now})
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


class Build:
    """The million-run file, built on a thread from the start of the session.

    Filling it takes ~18 s of SQLite's own work, during which sqlite3 releases the GIL: on a
    second core it overlaps the (mostly waiting) tests that run before this module, which then
    only waits for what is left. ``cancel`` interrupts it (a session that ends first) and
    removes the file.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="perdure-plans-"))
        self.path = self.dir / "big.db"
        self._conn: sqlite3.Connection | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="sqlite-plans", daemon=True)

    def start(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def _opened(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._conn = conn
            if self._cancelled:
                conn.interrupt()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            _fill(self.path, self._opened)
        except BaseException as exc:  # reported by result(), in the test that needs the file
            self._error = exc
        self.seconds = time.monotonic() - started

    def result(self, timeout: float) -> Path:
        self.start()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the million-run file is not built in {timeout} s"
        if self._error is not None:
            raise self._error
        print(f"\nfilled {ROWS} runs in {self.seconds:.1f} s (on a thread)")
        return self.path

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._conn is not None and self._thread.is_alive():
                self._conn.interrupt()
        self._thread.join(30)
        shutil.rmtree(self.dir, ignore_errors=True)


_build: Build | None = None


def _the_build() -> Build:
    global _build
    if _build is None:
        _build = Build()
    return _build


def prepare_in_background() -> None:
    """Start building the file now (tests/conftest.py calls this once a test of this module
    is among those selected)."""
    _the_build().start()


def stop_background() -> None:
    """Stop a build the session did not use, and remove the file (at the session's end)."""
    if _build is not None:
        _build.cancel()


@pytest.fixture(scope="module")
def big_file() -> Iterator[Path]:
    build = _the_build()
    try:
        yield build.result(timeout=200)
    finally:
        build.cancel()


# Module-scoped, so that pytest runs every test with one set of statistics before switching
# to the other: the million-row ANALYZE happens once, not once per test.
@pytest.fixture(scope="module", params=["analyzed", "no statistics"])
def statistics(request: pytest.FixtureRequest, big_file: Path) -> str:
    c = sqlite3.connect(big_file, isolation_level=None)
    try:
        if request.param == "analyzed":
            c.execute("ANALYZE")
        else:
            c.execute("DROP TABLE IF EXISTS sqlite_stat1")
            c.execute("DROP TABLE IF EXISTS sqlite_stat4")
    finally:
        c.close()
    return str(request.param)


@pytest.fixture
def conn(statistics: str, big_file: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(big_file, isolation_level=None)  # plans with those statistics
    try:
        yield c
    finally:
        c.close()


def _plan(conn: sqlite3.Connection, name: str, params: dict[str, Any]) -> list[str]:
    sql = queries("sqlite", "perdure_")[name]
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def _check(plan: list[str], *indexes: str) -> None:
    # A scan of a subquery's rows (a co-routine) or of a JSON array's is not a table scan.
    derived = {step.split()[1] for step in plan if step.startswith("CO-ROUTINE ")}
    derived |= {"json_each", "w", "CONSTANT"}
    scans = [step for step in plan if step.startswith("SCAN ") and step.split()[1] not in derived]
    assert not scans, f"a table scan: {plan}"
    for index in indexes:
        assert any(f"INDEX {index}" in step for step in plan), f"{index} not used: {plan}"


def _params(where: RunFilter, *, cursor: tuple[float, str] | None = None) -> dict[str, Any]:
    store = SqliteStorage(":memory:")
    query = where.query(limit=51)
    if cursor is not None:
        query = type(query)(**{**{f: getattr(query, f) for f in query.__dataclass_fields__},
                               "before_at": cursor[0], "before_id": cursor[1]})
    return store._list_query(query)[1]


def test_a_tag_lookup_searches_the_tag_index(conn: sqlite3.Connection) -> None:
    plan = _plan(conn, "list_runs_tagged", _params(RunFilter.of(tags={"customer": "c-4242"})))
    _check(plan, "perdure_tags_lookup")
    assert not any("TEMP B-TREE" in step for step in plan), f"sorted afterwards: {plan}"
    deep = _params(RunFilter.of(tags={"plan": "pro", "customer": "c-20"}, status="completed"),
                   cursor=(time.time() - 500_000, "r500000"))
    _check(_plan(conn, "list_runs_tagged", deep), "perdure_tags_lookup")


def test_the_runs_list_walks_the_creation_index(conn: sqlite3.Connection) -> None:
    for where in (RunFilter(), RunFilter.of(workflow="wf2"), RunFilter.of(status="failed")):
        plan = _plan(conn, "list_runs", _params(where, cursor=(time.time() - 1000, "r1000")))
        _check(plan, "perdure_runs_created")
        assert not any("TEMP B-TREE" in step for step in plan), plan


def test_unfinished_statuses_are_found_through_their_own_index(
        conn: sqlite3.Connection) -> None:
    # Blocked runs among a million finished ones: their index range, not the history's walk.
    for where in (RunFilter.of(status="blocked"), RunFilter.of(status="waiting", workflow="wf1")):
        plan = _plan(conn, "list_runs_unfinished", {**_params(where), "status": where.statuses[0]})
        _check(plan, "perdure_runs_in_flight")
        assert not any("TEMP B-TREE" in step for step in plan), f"sorted afterwards: {plan}"


@pytest.mark.parametrize(("name", "index"), [("activity_started", "perdure_runs_created"),
                                           ("activity_finished", "perdure_runs_finished"),
                                           ("unfinished_counts", "perdure_runs_")])
def test_the_overview_reads_index_ranges(conn: sqlite3.Connection, name: str,
                                         index: str) -> None:
    now = time.time()
    plan = _plan(conn, name, {"since": now - 3600, "until": now, "bucket": 60})
    _check(plan, index)
    # A range of the time window, not a status's whole range (a million completed runs).
    assert not any("runs_runnable" in step for step in plan) or name == "unfinished_counts"


def test_a_parents_children_come_from_the_parent_index(conn: sqlite3.Connection) -> None:
    _check(_plan(conn, "list_runs_children", _params(RunFilter.of(parent="r4999"))),
           "perdure_runs_parent")


def test_a_retention_batch_finds_its_runs_by_index(conn: sqlite3.Connection) -> None:
    now = time.time()
    cut = {"completed_before": now - 999_000, "failed_before": now - 999_000,
           "cancelled_before": None, "limit": 200}
    _check(_plan(conn, "prunable", cut), "perdure_runs_finished")
    ids = '["r1", "r2"]'
    # By primary key: found through runs_finished, a batch's ids would be looked for among
    # every finished run (a batch slowed down as the backlog grew, ~1.6 s at a million).
    _check(_plan(conn, "prune_runs", {"ids": ids}), "sqlite_autoindex_perdure_runs_1")
    children = sorted(n for n in queries("sqlite", "perdure_") if n.startswith("prune_child_"))
    assert "prune_child_tags" in children and "prune_child_journal" in children
    for name in children:
        _check(_plan(conn, name, {"ids": ids}))


def test_a_tag_page_at_a_million_runs_is_fast(big_file: Path) -> None:
    """Not a benchmark: a sanity bound that would catch a plan gone to a scan."""

    async def page() -> float:
        store = SqliteStorage(str(big_file))
        await store.open()
        try:
            query = RunFilter.of(tags={"plan": "pro"}).query(limit=51)
            started = time.monotonic()
            for _ in range(10):
                assert len(await store.list_runs(query)) == 51
            elapsed = (time.monotonic() - started) / 10
            assert await store.count_runs(
                RunFilter.of(tags={"customer": "c-5"}).query(limit=1)) == 10
            return elapsed
        finally:
            await store.close()

    elapsed = asyncio.run(page())
    print(f"\na page of 50 runs by tag among {ROWS}: {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5
