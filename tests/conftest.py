"""Shared fixtures: engines on both backends (one contract suite), and an injectable clock.

``db_url`` is parametrized over ``sqlite`` and ``postgres``, so every test that uses it (or
``make_engine``) runs against both adapters. The PostgreSQL side is one throwaway server for
the whole session (``tests/pgserver.py``) with a template database migrated once; each test
gets a clone of it (``CREATE DATABASE ... TEMPLATE``), dropped afterwards. Where the server
binaries are missing, the ``postgres`` variants are skipped.

Markers: ``sqlite_only`` keeps a test off PostgreSQL (for tests about SQLite itself);
``postgres`` marks tests that need the server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, VirtualClock
from tests.pgserver import PostgresServer, postgres_available

TEMPLATE = "perdure_template"
#: clones of the template made ahead of the tests that will take them (see PgCluster)
CLONES_AHEAD = 4


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: runs on the SQLite backend only")
    config.addinivalue_line("markers", "postgres: needs the throwaway PostgreSQL server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL variant of ``sqlite_only`` tests (deselected, not skipped)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db_url") if callspec is not None else None
        if backend == "postgres" and item.get_closest_marker("sqlite_only") is not None:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow, mostly waiting preparations of the selected tests' modules now, so
    that they overlap the tests that run before them (a module opts in by defining
    ``prepare_in_background()``, and ``stop_background()`` for a session that ends first)."""
    if session.config.option.collectonly:
        return
    modules = {id(item.module): item.module for item in session.items
               if isinstance(item, pytest.Function)}
    for module in modules.values():
        prepare = getattr(module, "prepare_in_background", None)
        if prepare is not None:
            prepare()
            _prepared.append(module)


_prepared: list[Any] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    for module in _prepared:
        module.stop_background()


class PgCluster:
    """The session's PostgreSQL server, its migrated template and fresh per-test clones.

    Cloning and dropping take a while on a busy machine, so both happen in background threads:
    the next ``CLONES_AHEAD`` clones are made while tests run. More than one, because most
    tests take less time than a clone (~60-100 ms) while a few take seconds: the clones made
    during a long test serve the quick ones after it without a wait.
    """

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._names = itertools.count(1)
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-clones")
        # A drop waits (in 100 ms steps) for the terminated sessions of the test to exit: on
        # its own thread, so that the next clone does not queue behind it.
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drops")
        self._ready: deque[Future[str]] = deque()

    def url(self, dbname: str, **query: str) -> str:
        url = self.server.url(dbname)
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return url

    def _create(self, template: str) -> str:
        name = f"t{next(self._names)}"
        # FILE_COPY: with fsync off its checkpoints are cheap, and it copies a small template
        # faster than PostgreSQL 15's default (WAL_LOG).
        self.server.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return name

    def new_database(self, *, migrated: bool = True) -> str:
        """A new database (a clone of the migrated template, or empty); returns its name."""
        if not migrated:
            return self._create("template0")
        while len(self._ready) <= CLONES_AHEAD:
            self._ready.append(self._background.submit(self._create, TEMPLATE))
        ready = self._ready.popleft()
        try:
            return ready.result()
        except Exception:  # made while the server restarted (a test does that): again
            return self._create(TEMPLATE)

    def drop(self, name: str) -> None:
        """Drop a database (in the background; its connections are terminated)."""
        self._dropper.submit(self.server.drop_database, name)

    def execute(self, sql: str, dbname: str) -> None:
        self.server.execute(sql, dbname=dbname)

    def close(self) -> None:
        self._background.shutdown(wait=True, cancel_futures=True)
        self._dropper.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL server for the session, with a migrated template database."""
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not available")
    pytest.importorskip("asyncpg")
    pytest.importorskip("psycopg")
    # fsync off: a throwaway cluster needs no durability against power loss; a process crash
    # or `pg_ctl restart -m immediate` still loses nothing that was committed.
    server = PostgresServer(settings={"fsync": "off"})
    server.start()
    try:
        server.create_database(TEMPLATE)
        from perdure.storage.postgres.adapter import PostgresStorage

        async def migrate() -> None:
            store = PostgresStorage(server.url(TEMPLATE))
            await store.open()
            await store.close()

        asyncio.run(migrate())
        cluster = PgCluster(server)
        try:
            yield cluster
        finally:
            cluster.close()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for the test: a SQLite file, or a clone of the PostgreSQL template."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'perdure.db'}"
        return
    cluster: PgCluster = request.getfixturevalue("pg")
    name = cluster.new_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop(name)


@pytest.fixture
def clock() -> VirtualClock:
    """A clock that moves only when the test advances it."""
    return VirtualClock()


@pytest.fixture
async def make_engine(db_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Open engines on the test's database; all are closed (or aborted) at the end."""
    engines: list[Engine] = []

    async def make(*workflows: Any, url: str | None = None, **options: Any) -> Engine:
        options.setdefault("shutdown_grace", 0.5)
        engine = Engine(url or db_url, workflows=list(workflows), **options)
        await engine.open()
        engines.append(engine)
        return engine

    yield make
    for engine in reversed(engines):
        await engine.close()
