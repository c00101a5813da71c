"""Fixtures of the PostgreSQL-only tests: fresh databases and real worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PgCluster

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Database:
    """A fresh database on the session's server."""

    cluster: PgCluster
    name: str

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)

    async def connect(self) -> Any:
        """A raw asyncpg connection, for looking at tables directly."""
        import asyncpg

        return await asyncpg.connect(self.url)


@pytest.fixture
def db(pg: PgCluster) -> Iterator[Database]:
    """A clone of the migrated template, dropped afterwards."""
    name = pg.new_database()
    try:
        yield Database(pg, name)
    finally:
        pg.drop(name)


@pytest.fixture(scope="session")
def million_runs(pg: PgCluster) -> Iterator[str]:
    """The URL of a database with a million runs (tests/pg/million.py), built once for the
    session's plan-regression tests, which only read it (and claim a few hundred runs)."""
    from tests.pg.million import build

    name = pg.new_database()
    try:
        url = pg.url(name)
        asyncio.run(build(url))
        yield url
    finally:
        pg.drop(name)


@pytest.fixture
def empty_db(pg: PgCluster) -> Iterator[Database]:
    """A database without the Perdure schema, dropped afterwards."""
    name = pg.new_database(migrated=False)
    try:
        yield Database(pg, name)
    finally:
        pg.drop(name)


@dataclass
class WorkerProcess:
    """``python -m perdure worker tests.pg.app:WORKFLOWS`` on a PostgreSQL database."""

    proc: subprocess.Popen[bytes]
    log: Path
    id: str = ""

    async def ready(self, timeout: float = 20.0) -> None:
        """Wait for the start-up line, which names the worker id."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        except TimeoutError:
            raise TimeoutError(f"worker did not start: {self.tail()}") from None
        if not line.startswith(b"perdure worker "):
            raise RuntimeError(f"worker failed to start ({line!r}): {self.tail()}")
        self.id = line.split()[2].decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def tail(self, n: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- worker pid {self.proc.pid} ---\n{text[-n:]}"


@dataclass
class Workers:
    """Worker processes of one test; all killed and reaped at the end."""

    dir: Path
    procs: list[WorkerProcess] = field(default_factory=list)

    @property
    def ledger(self) -> Path:
        return self.dir / "ledger.txt"

    def start(self, url: str, *, step_ms: float = 50, concurrency: int = 100,
              target: str = "tests.pg.app:WORKFLOWS") -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
        env.update(PERDURE_PG_LEDGER=str(self.ledger), PERDURE_PG_STEP_MS=str(step_ms),
                   PERDURE_LOG="INFO")
        log = self.dir / f"worker{len(self.procs)}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "perdure", "worker", target, "--db", url,
                 "--concurrency", str(concurrency)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
        worker = WorkerProcess(proc, log)
        self.procs.append(worker)
        return worker

    def executions(self) -> dict[str, list[int]]:
        """``RUN:SEQ`` -> pids of the processes that executed that step."""
        out: dict[str, list[int]] = {}
        if self.ledger.exists():
            for line in self.ledger.read_text().splitlines():
                key, pid = line.split()
                out.setdefault(key, []).append(int(pid))
        return out

    def describe(self) -> str:
        return "\n".join(w.tail() for w in self.procs)

    def close(self) -> None:
        for w in self.procs:
            with contextlib.suppress(Exception):
                w.kill()
            if w.proc.stdout is not None:
                w.proc.stdout.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
async def raw(db: Database) -> AsyncIterator[Any]:
    """A raw asyncpg connection to ``db``."""
    conn = await db.connect()
    try:
        yield conn
    finally:
        await conn.close()
