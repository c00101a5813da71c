"""Readiness follows the database: a worker's ``/readyz`` turns 503 when its PostgreSQL server
goes away and 200 again when it comes back, while ``/livez`` stays 200 throughout (restarting
the worker would not bring the database back).

The server is a cluster of the test's own, halted and resumed on the same port; the worker is
a real ``perdure worker`` process serving its health endpoints on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from perdure import Engine
from tests.crash.harness import Worker
from tests.integration.test_cli import greet
from tests.integration.test_observe_cli import get
from tests.pgserver import PostgresServer, postgres_available

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not available")
    pytest.importorskip("asyncpg")
    server = PostgresServer(settings={"fsync": "off"})
    server.start()
    try:
        server.create_database("app")
        yield server
    finally:
        server.stop()


async def _until(url: str, status: int, timeout: float = 30.0) -> str:
    """Ask ``url`` until it answers ``status`` (a probe's view: ask again, with a timeout)."""
    async with asyncio.timeout(timeout):
        while True:
            got, body, _ = await asyncio.to_thread(get, url)
            if got == status:
                return body
            await asyncio.sleep(0.1)


async def test_readiness_flips_with_the_database(own_server: PostgresServer,
                                                 tmp_path: Path) -> None:
    url = own_server.url("app")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    log = tmp_path / "worker.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perdure", "worker", "tests.integration.test_cli:greet",
             "--db", url, "--health-port", "0", "--http-host", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
    worker = Worker("w", proc, log)
    try:
        await worker.ready()
        assert proc.stdout is not None
        line = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
        base = line.rsplit(" ", 1)[1]
        assert await _until(f"{base}/readyz", 200) == "ready: claiming runs of greet\n"

        await asyncio.to_thread(own_server.halt)
        body = await _until(f"{base}/readyz", 503)
        assert body.startswith("not ready: the database ")
        assert (await asyncio.to_thread(get, f"{base}/livez"))[0] == 200

        await asyncio.to_thread(own_server.resume)
        assert await _until(f"{base}/readyz", 200) == "ready: claiming runs of greet\n"
        async with Engine(url, workflows=[greet], worker=False) as client:
            assert await (await client.start(greet, "back")).result(timeout=20) == "hello back"
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        worker.kill()
        if proc.stdout is not None:
            proc.stdout.close()
