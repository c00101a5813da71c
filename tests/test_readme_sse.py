"""The README's FastAPI example, served by a real uvicorn on 127.0.0.1 and read over HTTP.

The block that starts with ``# sse_app.py`` is written to a temporary directory as
``sse_app.py`` and served by ``python -m uvicorn sse_app:app`` on a socket this test bound to
a free port and passed to the server (``--fd``): connections made before the server is up wait
in the socket's backlog, so nothing polls for readiness.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_readme import README, ROOT, extract_blocks

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def _app_source() -> str:
    [block] = [b for b in extract_blocks(README.read_text(encoding="utf-8"))
               if b.code.startswith("# sse_app.py")]
    return block.code


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The README's app under uvicorn; its base URL."""
    (tmp_path / "sse_app.py").write_text(_app_source(), encoding="utf-8")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "sse_app:app", "--fd", str(sock.fileno()),
             "--log-level", "warning"],
            cwd=tmp_path, env=env, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL,
            stdout=err, stderr=err)
    sock.close()  # the server holds its own copy
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.returncode not in (0, -15):
            print(log.read_text(errors="replace"))


async def _events(client: Any, url: str, **headers: str) -> list[tuple[str, str, str]]:
    """Read one Server-Sent Events response to its end: (event, id, data) each."""
    out: list[tuple[str, str, str]] = []
    fields: dict[str, str] = {}
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line == "":
                if fields:
                    out.append((fields.get("event", "message"), fields.get("id", ""),
                                fields.get("data", "")))
                fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
    return out


async def test_the_readme_sse_endpoint_tails_a_stream(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=30, trust_env=False) as client:
        started = await client.post("/docs", params={"doc": "a durable stream of words"})
        assert started.status_code == 200
        run = started.json()["run"]
        # Read at once, while the run is (probably) still writing: a live tail.
        events = await _events(client, f"/runs/{run}/tokens")
        words = ["A", "DURABLE", "STREAM", "OF", "WORDS"]
        assert events == [("message", str(i), json.dumps(w)) for i, w in enumerate(words)] + [
            ("end", "", "{}")]
        # A reconnecting browser resumes after the last id it received.
        resumed = await _events(client, f"/runs/{run}/tokens", **{"Last-Event-ID": "2"})
        assert [json.loads(d) for e, _, d in resumed if e == "message"] == ["OF", "WORDS"]
        assert resumed[0][1] == "3"
        missing = await client.get("/runs/no-such-run/tokens")
        assert missing.status_code == 404
