"""Streams and events across a SIGKILL of the worker mid-stream: a reader that tails the
stream through the crash sees every item once, in order, and the stream ends when closed."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from perdure import Engine, RunStatus
from tests.crash.harness import Cluster
from tests.crash.talk.conftest import rows
from tests.crash.waits.helpers import hung_in

pytestmark = pytest.mark.crash

N = 6


async def stream_rows(cluster: Cluster, run_id: str) -> list[tuple[Any, ...]]:
    """The stream's rows as stored: (position, value); the end marker's value is None."""
    return await rows(cluster, "SELECT position, value FROM perdure_stream_items "
                      "WHERE run_id = ? AND stream = 'tokens' ORDER BY position", run_id)


async def collect(items: Any) -> list[Any]:
    return [item async for item in items]


@pytest.mark.parametrize("written", [0, 3], ids=["before-any-item", "mid-stream"])
async def test_kill_mid_stream_never_duplicates_or_reorders_an_item(
        cluster: Cluster, client: Engine, written: int) -> None:
    run_id = f"stream-{written}"
    handle = await client.start("streamer", "t", N, id=run_id)
    # A live reader from the start, in this process (another process than the workers).
    reader = asyncio.create_task(collect(handle.read_stream("tokens")))
    early = handle.read_stream("tokens").__aiter__()
    # Worker a makes `written` tokens, writes them, then hangs in the next token's step
    # after its side effect (its journal write never happens) and is killed there.
    a = cluster.start("a", hang_after=written)
    [event] = await cluster.wait_events(hung_in("make_token"), what="hang in a token step")
    assert event["run"] == run_id
    seen = [await asyncio.wait_for(early.__anext__(), 10) for _ in range(written)]
    assert await handle.get_event("progress", timeout=10) == written

    a.kill()
    # With no worker alive, what was written stays readable and the reader keeps waiting.
    assert (await handle.status()).status is RunStatus.RUNNING
    assert not reader.done()
    b = cluster.start("b")
    assert await handle.result(timeout=20) == N
    tokens = await asyncio.wait_for(reader, 20)

    assert [t.split()[0] for t in tokens] == [f"t-{i}" for i in range(N)]
    assert tokens[:written] == seen
    assert [t async for t in handle.read_stream("tokens")] == tokens  # a late reader agrees
    assert await handle.get_event("progress") == N
    # Each write journaled once, at its position, and stored once; the end marker last.
    journal = await handle.journal()
    writes = [int(e.output or "-1") for e in journal if e.kind == "stream"]
    assert writes == list(range(N))
    assert Counter(e.kind for e in journal)["stream_close"] == 1
    stored = await stream_rows(cluster, run_id)
    assert [p for p, _ in stored] == list(range(N + 1))
    assert stored[-1][1] is None
    # The token cut off by the kill was made again (at-least-once steps), by b, with the same
    # idempotency key; everything else exactly once.
    made = [(e["key"], e["pid"]) for e in cluster.ledger() if e["name"] == "make_token"]
    assert len(made) == N + 1
    assert made[written][0] == made[written + 1][0] == event["key"]
    assert [pid for _, pid in made] == [a.pid] * (written + 1) + [b.pid] * (N - written)
