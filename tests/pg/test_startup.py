"""Start-up order: a worker started before its database waits for it; clients fail fast.

The server here is a cluster of the test's own, halted (``pg_ctl stop``) before the worker
process starts and started again on the same port while the worker waits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perdure import Engine, StorageUnavailable
from tests.crash.harness import Worker
from tests.integration.test_cli import greet
from tests.pgserver import PostgresServer, postgres_available

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def halted_server() -> Iterator[PostgresServer]:
    """A database on a server of its own, halted (down) when the test begins."""
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not available")
    pytest.importorskip("asyncpg")
    server = PostgresServer(settings={"fsync": "off"})
    server.start()
    try:
        server.create_database("app")
        server.halt()
        yield server
    finally:
        server.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    return subprocess.run([sys.executable, "-m", "perdure", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=30)


async def test_a_worker_waits_for_its_database_and_clients_fail_fast(
        halted_server: PostgresServer, tmp_path: Path) -> None:
    url = halted_server.url("app")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    log = tmp_path / "worker.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perdure", "worker", "tests.integration.test_cli:greet",
             "--db", url], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
    worker = Worker("w", proc, log)
    try:
        # The worker is up, the database is not: it says so and keeps trying.
        await worker.wait_log("waiting for the database", timeout=20)
        assert proc.poll() is None

        # A client fails fast, with the transient error (not a configuration error).
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="cannot connect"):
            await Engine(url, workflows=[greet], worker=False).open()
        assert time.monotonic() - started < 5
        listing = await asyncio.to_thread(_cli, "runs", "list", "--db", url)
        assert listing.returncode == 2
        assert listing.stderr.startswith("perdure: StorageUnavailable: cannot connect")
        assert len(listing.stderr.splitlines()) == 1, listing.stderr

        # The database comes up: the worker connects, migrates and drives runs.
        await asyncio.to_thread(halted_server.resume)
        await worker.ready(timeout=30)
        async with Engine(url, workflows=[greet], worker=False) as client:
            handle = await client.start(greet, "pg")
            assert await handle.result(timeout=20) == "hello pg"
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        worker.kill()
        assert proc.stdout is not None
        proc.stdout.close()


async def test_a_worker_stopped_while_it_waits_exits_cleanly(
        halted_server: PostgresServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    log = tmp_path / "worker.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perdure", "worker", "tests.integration.test_cli:greet",
             "--db", halted_server.url("app")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=err)
    worker = Worker("w", proc, log)
    try:
        await worker.wait_log("waiting for the database", timeout=20)
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 10) == 0
        assert proc.stdout is not None
        assert b"stopped before the database could be reached" in proc.stdout.read()
    finally:
        worker.kill()
        assert proc.stdout is not None
        proc.stdout.close()
