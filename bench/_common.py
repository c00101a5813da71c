"""Helpers shared by the Perdure-side benchmark scripts (project venv; not a benchmark itself).

* :class:`Databases`: a fresh database per measurement — a new SQLite file under ``--dir``, or a
  new PostgreSQL database on the server given by an admin URL (``postgresql://.../postgres``),
  dropped afterwards.
* :class:`Sql`: a tiny read/write side channel to the same database (polling the runs table,
  bulk inserts), outside the engine.
* :func:`child_cmd`: the command line that runs another bench script in a subprocess against
  the same ``perdure`` package this process imported (the frozen copy under ``python -m bench``).
* :func:`stat`, :func:`pct`: the JSON shape every script reports; :func:`report` writes it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent


def is_pg(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def stat(values: list[float], unit: str, **extra: Any) -> dict[str, Any]:
    """``{"median", "min", "max", "unit", "samples"}`` (+ extras), as the other scripts do."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "samples": values, **extra}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..100) of ``values``."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, round(q / 100 * len(xs) + 0.5) - 1))
    return xs[k]


def rss_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB, from /proc."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return {"rss_kb": out.get("VmRSS", 0), "hwm_kb": out.get("VmHWM", 0)}


def child_cmd(script: str | Path, *args: str) -> list[str]:
    """Run ``script`` (a bench script) in a new interpreter that imports the same ``perdure``
    as this process (``bench/_snapshot_run.py`` puts its parent directory first)."""
    import perdure

    pkg_parent = Path(perdure.__file__).resolve().parents[1]
    return [sys.executable, str(BENCH / "_snapshot_run.py"), str(pkg_parent),
            str(BENCH / script), *args]


class Databases:
    """Fresh databases: SQLite files under ``root`` or PostgreSQL databases on ``admin_url``."""

    def __init__(self, db: str, root: Path) -> None:
        self.db = db
        self.root = root
        self.pg = is_pg(db)
        self._made: dict[str, str] = {}  # url -> database name or temp dir

    async def fresh(self, tag: str = "b") -> str:
        if not self.pg:
            d = tempfile.mkdtemp(prefix="perdure-bench-", dir=self.root)
            url = f"sqlite:///{d}/perdure.db"
            self._made[url] = d
            return url
        import asyncpg

        name = f"perdure_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        conn = await asyncpg.connect(self.db)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        parts = urlsplit(self.db)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        self._made[url] = name
        return url

    async def drop(self, url: str) -> None:
        what = self._made.pop(url, None)
        if what is None:
            return
        if not self.pg:
            shutil.rmtree(what, ignore_errors=True)
            return
        import asyncpg

        conn = await asyncpg.connect(self.db)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{what}" WITH (FORCE)')
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        for url in list(self._made):
            await self.drop(url)


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///").split("?", 1)[0]


class Sql:
    """A connection beside the engine's, for polling and bulk loading (``?`` placeholders are
    rewritten to ``$n`` for PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = is_pg(url)
        self._lite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def open(self) -> Sql:
        if self.pg:
            import asyncpg

            self._pg = await asyncpg.connect(self.url)
        else:
            self._lite = sqlite3.connect(sqlite_path(self.url), isolation_level=None,
                                         check_same_thread=False, timeout=30)
            self._lite.execute("PRAGMA busy_timeout = 30000")
        return self

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._lite is not None:
            self._lite.close()

    @staticmethod
    def _dollar(sql: str) -> str:
        parts = sql.split("?")
        return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "")
                       for i, p in enumerate(parts))

    async def val(self, sql: str, *args: Any) -> Any:
        if self.pg:
            return await self._pg.fetchval(self._dollar(sql), *args)
        assert self._lite is not None
        row = self._lite.execute(sql, args).fetchone()
        return row[0] if row else None

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.pg:
            return [tuple(r) for r in await self._pg.fetch(self._dollar(sql), *args)]
        assert self._lite is not None
        return list(self._lite.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> None:
        if self.pg:
            await self._pg.execute(self._dollar(sql), *args)
        else:
            assert self._lite is not None
            self._lite.execute(sql, args)

    async def wait_for(self, sql: str, predicate: Any, *, timeout: float,
                       every: float = 0.01, what: str = "") -> Any:
        """Poll ``sql`` until ``predicate(value)``; returns the value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.val(sql)
            if predicate(value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what or sql} "
                                   f"(last value {value!r})")
            await asyncio.sleep(every)


class Agent:
    """A worker subprocess (``_agent.py``) on ``db``; ``ask`` sends one command and returns its
    reply; ``stamps`` receives the ``{"event": "stamp"}`` lines of ``_app.emit``."""

    def __init__(self, db: str, *, concurrency: int = 100, park_after: float = 5.0,
                 stamp_wakes: bool = False) -> None:
        self.db = db
        self.args = ["--db", db, "--concurrency", str(concurrency),
                     "--park-after", str(park_after)] + (["--stamp-wakes"] if stamp_wakes
                                                         else [])
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stamps: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        #: ``{"event": "woke"}`` lines (``stamp_wakes``), in order
        self.wakes: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 60) -> dict[str, Any]:
        import json

        self.proc = await asyncio.create_subprocess_exec(
            *child_cmd("_agent.py", *self.args), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=2**24)

        async def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    await self.replies.put({"event": "eof"})
                    return
                msg = json.loads(line)
                if msg.get("event") == "woke":
                    self.wakes.append(msg)
                elif msg.get("event") == "stamp":
                    msg["recv"] = time.time()
                    await self.stamps.put(msg)
                else:
                    await self.replies.put(msg)

        self._reader = asyncio.create_task(read())
        self.ready = await asyncio.wait_for(self.replies.get(), timeout)
        if self.ready.get("event") != "ready":
            raise RuntimeError(f"agent failed to start: {self.ready}")
        return self.ready

    async def ask(self, cmd: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
        import json

        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(self.replies.get(), timeout)
        if reply.get("event") in ("eof", "error"):
            raise RuntimeError(f"agent: {reply}")
        return reply

    def kill(self) -> None:
        """SIGKILL (the caller then awaits :meth:`reap` at once: a zombie still has a pid)."""
        assert self.proc is not None
        self.proc.kill()

    async def reap(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def quit(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await self.proc.stdin.drain()
            self.proc.stdin.close()
            await asyncio.wait_for(self.proc.wait(), timeout)
        except (TimeoutError, ConnectionError, BrokenPipeError):
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


def report(db: str, workloads: dict[str, dict[str, Any]], started: float, out: Path | None, *,
           notes: list[str], width: int = 16, digits: int = 1, **fields: Any) -> int:
    """Write a script's JSON report (to ``out``, if given) and print its medians."""
    import json
    import platform

    import perdure

    data = {"engine": "perdure", "version": perdure.__version__,
            "backend": "postgresql" if is_pg(db) else "sqlite",
            "python": platform.python_version(), **fields, "workloads": workloads,
            "wall_seconds": time.perf_counter() - started, "notes": notes}
    if out:
        out.write_text(json.dumps(data, indent=2) + "\n")
    for k, v in workloads.items():
        print(f"  {k:{width}s} median {v['median']:.{digits}f} "
              f"[{v['min']:.{digits}f} .. {v['max']:.{digits}f}] {v['unit']}")
    return 0
