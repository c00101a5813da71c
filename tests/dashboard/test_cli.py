"""``perdure dashboard``: a real server process on a free 127.0.0.1 port, read-only without a
token, signing in with the one from the environment, and its mistakes in one line."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from perdure import Engine

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")
REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _serve(url: str, token: str | None) -> Iterator[tuple[httpx.Client, list[str]]]:
    """The command on a free port (``--port 0``), and a client of it; on exit, its output."""
    env = {k: v for k, v in os.environ.items() if k != "PERDURE_DASHBOARD_TOKEN"}
    if token is not None:
        env["PERDURE_DASHBOARD_TOKEN"] = token
    output: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "perdure", "dashboard", "--db", url,
                           "--port", "0"], cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once it listens
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        try:
            assert found, line
            with httpx.Client(base_url=f"http://127.0.0.1:{found[1]}", timeout=10) as client:
                yield client, output
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=20)
            output += [line, out, err]
            assert proc.returncode == 0, output


async def test_the_command_serves_read_only_or_with_the_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    async with Engine(url, worker=False):
        pass  # the schema
    with _serve(url, None) as (client, _):
        page = client.get("/")
        assert page.status_code == 200 and "read-only" in page.text
        assert client.get("/login").status_code == 403
    token = "cli-token-0123456789abcdef"
    with _serve(url, token) as (client, output):
        assert client.get("/login").status_code == 200
        assert client.post("/login", data={"token": "wrong-" + token}).status_code == 403
        signed = client.post("/login", data={"token": token})
        assert signed.status_code == 303 and "perdure_session" in signed.headers["set-cookie"]
        assert token not in signed.headers["set-cookie"]
    assert token not in "".join(output)  # neither printed nor logged, even when mistyped


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "PERDURE_DASHBOARD_TOKEN"}
        if token:
            env["PERDURE_DASHBOARD_TOKEN"] = token
        return subprocess.run([sys.executable, "-m", "perdure", "dashboard", *args], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)

    missing = run("--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr
    url = f"sqlite:///{tmp_path / 'app.db'}"
    subprocess.run([sys.executable, "-m", "perdure", "migrate", "--db", url], cwd=REPO,
                   check=True, capture_output=True)
    short = run("--db", url, token="short")
    assert short.returncode == 2 and "at least 16 characters" in short.stderr
    assert "short" not in short.stderr.replace("at least", "")
