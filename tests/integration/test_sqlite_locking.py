"""SQLite specifics: another process's write lock never stalls the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from perdure import Engine, workflow


@workflow
async def noop(x: int) -> int:
    return x


async def test_a_locked_database_waits_in_the_thread_not_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    async with Engine(f"sqlite:///{path}", workflows=[noop], worker=False) as engine:
        # Another process (here: another connection) holds the write lock.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            start = asyncio.ensure_future(engine.start(noop, 1, id="r"))
            ticks = 0
            while not start.done() and ticks < 20:
                await asyncio.sleep(0.005)  # the loop keeps turning while the start waits
                ticks += 1
            assert not start.done() and ticks == 20
        finally:
            other.execute("COMMIT")
            other.close()
        handle = await asyncio.wait_for(start, 10)
        assert (await handle.status()).id == "r"
