"""The durable-agent examples run: the travel agent with its SIGKILL, and its SSE web API served
by a real uvicorn on 127.0.0.1 (the socket bound here and handed over with ``--fd``, so nothing
polls for readiness)."""

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

pytest.importorskip("pydantic_ai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.mark.slow
@pytest.mark.timeout(180)  # three interpreters that import Pydantic AI, on a shared machine
def test_the_travel_agent_survives_its_sigkill(tmp_path: Path) -> None:
    env = dict(os.environ, TRAVEL_DATA=str(tmp_path), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(EXAMPLES / "travel_agent.py")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("worker 1 killed after ")
    assert lines[1] == "waiting for approval; the run is parked"
    assert lines[2].startswith("All set: booked 3 nights in Porto (ref trip-1:")
    counts = json.loads(lines[3])
    # Two model calls before the kill, two after: none repeated. Porto's search, cut off by
    # the kill, ran again (steps are at-least-once); the approved booking ran once.
    assert counts["model calls"] == 4
    assert counts["research"] in (2, 3)
    assert counts["book"] == 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """examples/agent_sse.py under uvicorn; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    env = dict(os.environ, TRAVEL_DATA=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(EXAMPLES)]))
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "agent_sse:app", "--fd", str(sock.fileno()),
             "--log-level", "warning"],
            cwd=tmp_path, env=env, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL,
            stdout=err, stderr=err)
    sock.close()
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


async def sse(client: Any, url: str, *, until: str | None = None,
              **headers: str) -> list[tuple[str, str, Any]]:
    """Read a Server-Sent Events response: (event, id, data) each, to its end or ``until``."""
    out: list[tuple[str, str, Any]] = []
    fields: dict[str, str] = {}
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line == "":
                if fields:
                    out.append((fields.get("event", "message"), fields.get("id", ""),
                                json.loads(fields.get("data", "null"))))
                    if fields.get("event") == until:
                        break
                fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
    return out


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_agent_sse_endpoint_streams_the_agents_events(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=60, trust_env=False) as client:
        started = await client.post("/threads/t1", params={"request": "a weekend by the sea"})
        assert started.json() == {"run": "trip-t1"}
        again = await client.post("/threads/t1", params={"request": "a weekend by the sea"})
        assert again.json() == {"run": "trip-t1"}  # one run per thread
        # Live, up to the booking the agent asks approval for.
        first = await sse(client, "/threads/t1/events", until="function_tool_call")
        first += await sse(client, "/threads/t1/events", until="function_tool_call",
                           **{"Last-Event-ID": first[-1][1]})
        first += await sse(client, "/threads/t1/events", until="function_tool_call",
                           **{"Last-Event-ID": first[-1][1]})
        assert [d["part"]["tool_name"] for e, _, d in first if e == "function_tool_call"] \
            == ["research", "research", "book"]
        assert (await client.post("/threads/t1/approve")).json() == {"approved": True}
        rest = await sse(client, "/threads/t1/events", **{"Last-Event-ID": first[-1][1]})
        assert rest[-1][0] == "end"
        everything = await sse(client, "/threads/t1/events")
        assert everything[:-1] == first + rest[:-1]  # the same events, once, in order
        assert [int(i) for _, i, _ in everything[:-1]] == list(range(len(everything) - 1))
        booked = [d for e, _, d in rest if e == "function_tool_result"]
        assert booked and "booked 3 nights in Porto" in booked[-1]["part"]["content"]
        assert (await client.get("/threads/nope/events")).status_code == 404
