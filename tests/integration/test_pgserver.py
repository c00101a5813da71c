"""The throwaway PostgreSQL server used by the PostgreSQL tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.pgserver import (  # noqa: E402
    PASSWORD_ROLE,
    PASSWORD_ROLE_PASSWORD,
    PostgresServer,
    postgres_available,
)

pytestmark = [
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL server binaries not available"),
    pytest.mark.timeout(60),
]

psycopg = pytest.importorskip("psycopg")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_template_clone_restart_stop() -> None:
    t0 = time.monotonic()
    pg = PostgresServer()
    pg.start()
    try:
        assert time.monotonic() - t0 < 10  # normally ~1 s
        directory = pg.directory
        port = pg.port
        assert pg.url("x") == f"postgresql://postgres@127.0.0.1:{port}/x"

        # A template database with a table and a row ...
        pg.create_database("tmpl")
        pg.execute(
            "CREATE TABLE runs (id text PRIMARY KEY, epoch bigint NOT NULL);"
            "INSERT INTO runs VALUES ('r1', 7);",
            dbname="tmpl",
        )
        # ... cloned (needs no open connection to the template).
        url = pg.create_database("clone1", template="tmpl")
        assert url == pg.url("clone1")
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT id, epoch FROM runs").fetchall() == [("r1", 7)]
            conn.execute("INSERT INTO runs VALUES ('r2', 1)")
        with psycopg.connect(pg.url("tmpl")) as conn:  # the template is untouched
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)

        # Restart: an open connection breaks, a new one on the same port works,
        # and committed data survived.
        conn = psycopg.connect(url, autocommit=True)
        try:
            pg.restart()
            assert pg.port == port
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        finally:
            conn.close()
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (2,)

        # A crash-style restart (immediate shutdown, crash recovery on start).
        pg.restart(mode="immediate")
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (2,)

        pg.drop_database("clone1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url).close()
    finally:
        pg.stop()
    assert not os.path.exists(directory)
    assert not _port_open(port)
    pg.stop()  # idempotent


def test_password_role_and_context_manager() -> None:
    with PostgresServer() as pg:
        good = pg.url(user=PASSWORD_ROLE, password=PASSWORD_ROLE_PASSWORD)
        with psycopg.connect(good) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (PASSWORD_ROLE,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(pg.url(user=PASSWORD_ROLE, password="wrong")).close()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.url(user=PASSWORD_ROLE)).close()  # no password at all
        # The superuser is trusted over TCP.
        with psycopg.connect(pg.url()) as conn:
            assert conn.execute("SELECT current_setting('max_connections')").fetchone() == ("200",)
        directory = pg.directory
    assert not os.path.exists(directory)


def test_guard_cleans_up_after_owner_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the owning process: the guard stops the server and removes its dir."""
    script = textwrap.dedent(
        """
        import sys, time
        from tests.pgserver import PostgresServer
        pg = PostgresServer()
        pg.start()
        print(pg.directory, pg.port, flush=True)
        time.sleep(120)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        directory, port_s = line.split()
        port = int(port_s)
        assert os.path.isdir(directory)
        assert _port_open(port)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (os.path.exists(directory) or _port_open(port)):
        time.sleep(0.1)
    assert not os.path.exists(directory)
    assert not _port_open(port)
