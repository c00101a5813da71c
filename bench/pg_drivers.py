"""psycopg 3 (async) vs asyncpg on Perdure's PostgreSQL hot path.

Starts a throwaway PostgreSQL 15 server (tests/pgserver.py; fsync on,
synchronous_commit on, otherwise default settings), creates Perdure's
``runs``/``journal`` schema and measures, per driver:

* ``SELECT 1`` round trip (sequential);
* the fenced journal write: one autocommit statement that inserts the journal
  row only if ``runs.epoch`` still equals the writer's epoch; the row count
  tells a fenced-off writer (sequential, then 50 concurrent writers over
  several connection strategies and batching strategies);
* the claim query (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
  RETURNING id, epoch``) (sequential).

For each phase: wall-clock latency per operation (median, p99), client CPU
time per operation (``time.process_time`` of this Python process) and server
CPU time per operation (utime+stime of the postmaster and its children, read
from /proc; 10 ms tick resolution, so it is only meaningful over whole phases).

Run:  .venv/bin/python bench/pg_drivers.py [--quick] [--md bench/pg_drivers.md]

The results table is written between the markers in the markdown file (the
rest of the file, method and recommendation, is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import asyncpg  # noqa: E402
import psycopg  # noqa: E402

from tests.pgserver import PostgresServer  # noqa: E402

SCHEMA = """
CREATE TABLE runs (id text PRIMARY KEY, status text NOT NULL, epoch bigint NOT NULL,
                   owner text, lease_until double precision, updated_at double precision);
CREATE TABLE journal (run_id text NOT NULL, seq int NOT NULL, kind text NOT NULL,
                      name text NOT NULL, status text NOT NULL, attempts int NOT NULL,
                      output text, error text, PRIMARY KEY (run_id, seq));
"""

# The fenced write. $1 (run id) is used twice; asyncpg reuses $1, psycopg gets
# it passed twice (its %s placeholders are positional).
_WRITE_SQL = """INSERT INTO journal (run_id, seq, kind, name, status, attempts, output, error)
SELECT {p1}, {p2}, {p3}, {p4}, {p5}, {p6}, {p7}, {p8}
WHERE EXISTS (SELECT 1 FROM runs WHERE id = {p9} AND epoch = {p10})"""
WRITE_APG = _WRITE_SQL.format(
    p1="$1", p2="$2", p3="$3", p4="$4", p5="$5", p6="$6", p7="$7", p8="$8", p9="$1", p10="$9"
)
WRITE_PSY = _WRITE_SQL.format(**{f"p{i}": "%s" for i in range(1, 11)})

# A batch of fenced writes as ONE statement; fenced-off rows are the ones not returned.
_BATCH_SQL = """INSERT INTO journal (run_id, seq, kind, name, status, attempts, output, error)
SELECT b.run_id, b.seq, b.kind, b.name, b.status, b.attempts, b.output, b.error
FROM unnest({a1}::text[], {a2}::int[], {a3}::text[], {a4}::text[], {a5}::text[],
            {a6}::int[], {a7}::text[], {a8}::text[], {a9}::bigint[])
     AS b(run_id, seq, kind, name, status, attempts, output, error, epoch)
JOIN runs r ON r.id = b.run_id AND r.epoch = b.epoch
RETURNING run_id, seq"""
BATCH_APG = _BATCH_SQL.format(**{f"a{i}": f"${i}" for i in range(1, 10)})
BATCH_PSY = _BATCH_SQL.format(**{f"a{i}": "%s" for i in range(1, 10)})

_CLAIM_SQL = """UPDATE runs SET owner = {p1}, epoch = epoch + 1, lease_until = {p2}
WHERE id IN (SELECT id FROM runs WHERE status = 'pending' ORDER BY id LIMIT 10
             FOR UPDATE SKIP LOCKED)
RETURNING id, epoch"""
CLAIM_APG = _CLAIM_SQL.format(p1="$1", p2="$2")
CLAIM_PSY = _CLAIM_SQL.format(p1="%s", p2="%s")

OUTPUT = '{"ok": true, "value": {"order_id": "ord_8f14e45f", "amount_cents": 129900, "n": 3}}'

# (run_id, seq, kind, name, status, attempts, output, error, epoch)
Write = tuple[str, int, str, str, str, int, str | None, str | None, int]


def make_write(run_id: str, seq: int, epoch: int = 1) -> Write:
    return (run_id, seq, "step", f"charge_card_{seq % 7}", "ok", 1, OUTPUT, None, epoch)


# --------------------------------------------------------------------------- drivers


class Driver:
    name = ""

    async def connect(self, url: str) -> Any:
        raise NotImplementedError

    async def close(self, conn: Any) -> None:
        raise NotImplementedError

    async def select1(self, conn: Any) -> None:
        raise NotImplementedError

    async def write(self, conn: Any, w: Write) -> bool:
        """One fenced write; True if written, False if fenced off."""
        raise NotImplementedError

    async def claim(self, conn: Any, owner: str, lease_until: float) -> list[tuple[str, int]]:
        raise NotImplementedError

    async def write_batch_unnest(self, conn: Any, ws: Sequence[Write]) -> list[bool]:
        raise NotImplementedError

    async def write_batch_pipelined(self, conn: Any, ws: Sequence[Write]) -> list[bool] | None:
        """Driver-native batching; None if per-write results are not available."""
        raise NotImplementedError


def _unnest_args(ws: Sequence[Write]) -> list[list[Any]]:
    return [list(col) for col in zip(*ws, strict=True)]


def _written_mask(ws: Sequence[Write], returned: Any) -> list[bool]:
    got = {(r[0], r[1]) for r in returned}
    return [(w[0], w[1]) in got for w in ws]


class AsyncpgDriver(Driver):
    name = "asyncpg"

    async def connect(self, url: str) -> Any:
        return await asyncpg.connect(url)

    async def close(self, conn: Any) -> None:
        await conn.close()

    async def select1(self, conn: Any) -> None:
        assert await conn.fetchval("SELECT 1") == 1

    async def write(self, conn: Any, w: Write) -> bool:
        status: str = await conn.execute(WRITE_APG, *w)  # "INSERT 0 <n>"
        return status.endswith(" 1")

    async def claim(self, conn: Any, owner: str, lease_until: float) -> list[tuple[str, int]]:
        rows = await conn.fetch(CLAIM_APG, owner, lease_until)
        return [(r[0], r[1]) for r in rows]

    async def write_batch_unnest(self, conn: Any, ws: Sequence[Write]) -> list[bool]:
        return _written_mask(ws, await conn.fetch(BATCH_APG, *_unnest_args(ws)))

    async def write_batch_pipelined(self, conn: Any, ws: Sequence[Write]) -> list[bool] | None:
        # executemany pipelines Bind/Execute and is atomic (one transaction), but
        # returns nothing: a fenced-off write cannot be told apart.
        await conn.executemany(WRITE_APG, ws)
        return None


class PsycopgDriver(Driver):
    name = "psycopg"

    async def connect(self, url: str) -> Any:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def close(self, conn: Any) -> None:
        await conn.close()

    async def select1(self, conn: Any) -> None:
        cur = await conn.execute("SELECT 1")
        assert (await cur.fetchone()) == (1,)

    async def write(self, conn: Any, w: Write) -> bool:
        cur = await conn.execute(WRITE_PSY, (*w[:8], w[0], w[8]))
        return bool(cur.rowcount == 1)

    async def claim(self, conn: Any, owner: str, lease_until: float) -> list[tuple[str, int]]:
        cur = await conn.execute(CLAIM_PSY, (owner, lease_until))
        return [(r[0], r[1]) for r in await cur.fetchall()]

    async def write_batch_unnest(self, conn: Any, ws: Sequence[Write]) -> list[bool]:
        cur = await conn.execute(BATCH_PSY, _unnest_args(ws))
        return _written_mask(ws, await cur.fetchall())

    async def write_batch_pipelined(self, conn: Any, ws: Sequence[Write]) -> list[bool] | None:
        # Pipeline mode: all statements go out back to back, one Sync at the end,
        # so the batch is ONE implicit transaction (one commit); row counts per
        # statement are still available.
        curs = []
        async with conn.pipeline():
            for w in ws:
                curs.append(await conn.execute(WRITE_PSY, (*w[:8], w[0], w[8])))
        return [c.rowcount == 1 for c in curs]


class PsycopgRawDriver(PsycopgDriver):
    """psycopg with AsyncRawCursor: server-side $n placeholders, no query rewriting.

    Same SQL text as asyncpg; saves psycopg's %s -> $n conversion per execute.
    """

    name = "psycopg-raw"

    async def connect(self, url: str) -> Any:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, cursor_factory=psycopg.AsyncRawCursor
        )

    async def write(self, conn: Any, w: Write) -> bool:
        cur = await conn.execute(WRITE_APG, w)
        return bool(cur.rowcount == 1)

    async def claim(self, conn: Any, owner: str, lease_until: float) -> list[tuple[str, int]]:
        cur = await conn.execute(CLAIM_APG, (owner, lease_until))
        return [(r[0], r[1]) for r in await cur.fetchall()]

    async def write_batch_unnest(self, conn: Any, ws: Sequence[Write]) -> list[bool]:
        cur = await conn.execute(BATCH_APG, _unnest_args(ws))
        return _written_mask(ws, await cur.fetchall())

    async def write_batch_pipelined(self, conn: Any, ws: Sequence[Write]) -> list[bool] | None:
        curs = []
        async with conn.pipeline():
            for w in ws:
                curs.append(await conn.execute(WRITE_APG, w))
        return [c.rowcount == 1 for c in curs]


DRIVERS: list[Driver] = [PsycopgDriver(), PsycopgRawDriver(), AsyncpgDriver()]
APG = DRIVERS[2]


# --------------------------------------------------------------------------- measuring


def server_cpu_seconds(pg: PostgresServer) -> float:
    """utime+stime of the postmaster and all its children (live ones only)."""
    try:
        with open(os.path.join(pg.data_dir, "postmaster.pid")) as f:
            postmaster = int(f.readline())
    except (OSError, ValueError):
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid, ppid = int(entry), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@dataclass
class Result:
    phase: str
    driver: str
    how: str
    ops: int
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    latencies_ns: list[int] = field(default_factory=list)
    rounds: list[Result] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.ops / self.wall_s

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies_ns)
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0

    @property
    def median_us(self) -> float:
        return statistics.median(self.latencies_ns) / 1000.0 if self.latencies_ns else float("nan")


class Meter:
    """Wall clock, client CPU and server CPU over a phase."""

    def __init__(self, pg: PostgresServer) -> None:
        self.pg = pg

    def __enter__(self) -> Meter:
        self.w0 = time.perf_counter()
        self.c0 = time.process_time()
        self.s0 = server_cpu_seconds(self.pg)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0
        self.server = server_cpu_seconds(self.pg) - self.s0


async def timed_loop(
    pg: PostgresServer, n: int, op: Callable[[int], Awaitable[object]]
) -> tuple[list[int], Meter]:
    lat: list[int] = []
    with Meter(pg) as m:
        for i in range(n):
            t = time.perf_counter_ns()
            await op(i)
            lat.append(time.perf_counter_ns() - t)
    return lat, m


def merge(results: list[Result]) -> Result:
    r0 = results[0]
    return Result(
        r0.phase,
        r0.driver,
        r0.how,
        sum(r.ops for r in results),
        sum(r.wall_s for r in results),
        sum(r.client_cpu_s for r in results),
        sum(r.server_cpu_s for r in results),
        [x for r in results for x in r.latencies_ns],
        list(results),
    )


# --------------------------------------------------------------------------- phases


async def seed_runs(url: str, ids: Sequence[str], status: str = "running") -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO runs (id, status, epoch) VALUES ($1, $2, 1)", [(i, status) for i in ids]
        )
    finally:
        await conn.close()


async def check_correctness(drv: Driver, url: str) -> None:
    """The fenced write must tell a fenced-off writer apart, for every variant."""
    run = f"check-{drv.name}"
    await seed_runs(url, [run])
    conn = await drv.connect(url)
    try:
        assert await drv.write(conn, make_write(run, 0, epoch=1)) is True
        assert await drv.write(conn, make_write(run, 1, epoch=0)) is False  # stale epoch
        assert await drv.write(conn, make_write("no-such-run", 0, epoch=1)) is False
        mask = await drv.write_batch_unnest(
            conn, [make_write(run, 2), make_write(run, 3, epoch=7), make_write(run, 4)]
        )
        assert mask == [True, False, True], mask
        mask2 = await drv.write_batch_pipelined(conn, [make_write(run, 5), make_write(run, 6, 9)])
        assert mask2 in (None, [True, False]), mask2
    finally:
        await drv.close(conn)


async def psycopg_pipeline_prepare_hazard(url: str) -> str:
    """Does an error inside a pipeline leave psycopg's prepared-statement cache stale?

    With the default prepare_threshold=5, the statement gets prepared on its 5th
    execution; if that happens inside a pipeline that then aborts, psycopg may
    still believe the statement exists on the server.
    """
    pg_conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        await pg_conn.execute("CREATE TEMP TABLE hz (id int PRIMARY KEY)")
        q = "INSERT INTO hz VALUES (%s)"
        for i in range(2):
            await pg_conn.execute(q, (i,))
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            async with pg_conn.pipeline():
                for i in (10, 11, 0, 12):  # 0 is a duplicate key
                    await pg_conn.execute(q, (i,))
        failures = 0
        for i in range(20, 23):
            try:
                await pg_conn.execute(q, (i,))
            except psycopg.errors.InvalidSqlStatementName:
                failures += 1
        if failures:
            return (
                f"REPRODUCED: after a pipeline aborted by a unique violation, {failures}/3 later "
                "executions of the same statement on that connection failed with "
                "InvalidSqlStatementName (prepared statement does not exist)"
            )
        return "not reproduced: later executions after an aborted pipeline succeeded"
    finally:
        await pg_conn.close()


async def seq_phase(
    pg: PostgresServer, drv: Driver, url: str, phase: str, n: int, warmup: int, tag: str
) -> Result:
    conn = await drv.connect(url)
    try:
        if phase == "SELECT 1":

            async def op(i: int) -> object:
                await drv.select1(conn)
                return None

        elif phase == "fenced write":
            run = f"seq-{drv.name}-{tag}"
            await seed_runs(url, [run])

            async def op(i: int) -> object:
                ok = await drv.write(conn, make_write(run, i))
                assert ok
                return ok

        elif phase == "claim (10 rows)":

            async def op(i: int) -> object:
                rows = await drv.claim(conn, f"worker-{drv.name}", time.time() + 30.0)
                assert len(rows) == 10
                return rows

        else:
            raise ValueError(phase)
        # warm-up: connection caches, prepared statements (psycopg prepares after 5 runs)
        for i in range(warmup):
            await op(n + i)
        lat, m = await timed_loop(pg, n, op)
        return Result(phase, drv.name, "1 connection, sequential", n, m.wall, m.cpu, m.server, lat)
    finally:
        await drv.close(conn)


class SimplePool:
    """The same trivial FIFO pool for both drivers, to isolate the drivers' cost."""

    def __init__(self, conns: Sequence[Any]) -> None:
        self._q: asyncio.Queue[Any] = asyncio.Queue()
        for c in conns:
            self._q.put_nowait(c)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        conn = await self._q.get()
        try:
            yield conn
        finally:
            self._q.put_nowait(conn)


class Batcher:
    """Group commit: writers enqueue, one flusher sends everything pending at once."""

    def __init__(
        self, conn: Any, flush: Callable[[Any, Sequence[Write]], Awaitable[list[bool] | None]]
    ) -> None:
        self.conn = conn
        self.flush = flush
        self.pending: list[tuple[Write, asyncio.Future[bool]]] = []
        self.wakeup = asyncio.Event()
        self.batches = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def write(self, w: Write) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending.append((w, fut))
        self.wakeup.set()
        return await fut

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    mask = await self.flush(self.conn, [w for w, _ in batch])
                except Exception as e:
                    for _, fut in batch:
                        fut.set_exception(e)
                    continue
                self.batches += 1
                for i, (_, fut) in enumerate(batch):
                    fut.set_result(True if mask is None else mask[i])

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def concurrent_phase(
    pg: PostgresServer,
    drv: Driver,
    url: str,
    how: str,
    writers: int,
    per_writer: int,
    tag: str,
) -> Result:
    runs = [f"conc-{drv.name}-{how}-{tag}-{k}" for k in range(writers)]
    await seed_runs(url, runs)
    closers: list[Callable[[], Awaitable[None]]] = []
    write: Callable[[int, Write], Awaitable[bool]]
    note = ""

    if how.startswith("pool"):
        size = int(how[len("pool") :])
        conns = [await drv.connect(url) for _ in range(size)]
        closers += [functools.partial(drv.close, c) for c in conns]
        pool = SimplePool(conns)

        async def write(k: int, w: Write) -> bool:
            async with pool.acquire() as conn:
                return await drv.write(conn, w)

    elif how.startswith("apgpool"):  # asyncpg's own Pool
        size = 10
        reset: Any = None
        if how.endswith("-noreset"):

            async def _noop(conn: Any) -> None:
                return None

            reset = _noop
        apool = await asyncpg.create_pool(url, min_size=size, max_size=size, reset=reset)
        closers.append(apool.close)

        async def write(k: int, w: Write) -> bool:
            async with apool.acquire() as conn:
                return await drv.write(conn, w)

    elif how == "conn-per-writer":
        conns = [await drv.connect(url) for _ in range(writers)]
        closers += [functools.partial(drv.close, c) for c in conns]

        async def write(k: int, w: Write) -> bool:
            return await drv.write(conns[k], w)

    elif how in ("batch-native", "batch-unnest"):
        conn = await drv.connect(url)
        flush = drv.write_batch_pipelined if how == "batch-native" else drv.write_batch_unnest
        batcher = Batcher(conn, flush)

        async def _close_batcher() -> None:
            await batcher.aclose()
            await drv.close(conn)

        closers.append(_close_batcher)

        async def write(k: int, w: Write) -> bool:
            return await batcher.write(w)

    else:
        raise ValueError(how)

    lat: list[int] = []

    async def writer(k: int, base: int) -> None:
        for i in range(per_writer):
            t = time.perf_counter_ns()
            ok = await write(k, make_write(runs[k], base + i))
            lat.append(time.perf_counter_ns() - t)
            assert ok

    try:
        await asyncio.gather(*(writer(k, 1_000_000) for k in range(writers)))  # warm-up
        lat.clear()
        if how.startswith("batch"):
            batcher.batches = 0
        with Meter(pg) as m:
            await asyncio.gather(*(writer(k, 0) for k in range(writers)))
        if how.startswith("batch"):
            note = f", avg batch {writers * per_writer / max(1, batcher.batches):.0f}"
    finally:
        for close in closers:
            await close()
    return Result(
        "fenced write",
        drv.name,
        f"{writers} writers, {how}{note}",
        writers * per_writer,
        m.wall,
        m.cpu,
        m.server,
        lat,
    )


# --------------------------------------------------------------------------- report

MD_START = "<!-- results:start -->"
MD_END = "<!-- results:end -->"


def _spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    if len(values) < 2:
        return ""
    return f" ({fmt.format(min(values))}–{fmt.format(max(values))})"  # noqa: RUF001


def fmt_table(results: list[Result]) -> str:
    lines = [
        "| phase | driver | how | ops | median µs | p99 µs | ops/s | client CPU µs/op "
        "| server CPU µs/op |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rr = r.rounds
        med = f"{r.median_us:.0f}{_spread([x.median_us for x in rr])}"
        tput = f"{r.throughput:.0f}{_spread([x.throughput for x in rr])}"
        cpu = f"{r.client_cpu_s / r.ops * 1e6:.0f}" + _spread(
            [x.client_cpu_s / x.ops * 1e6 for x in rr]
        )
        lines.append(
            f"| {r.phase} | {r.driver} | {r.how} | {r.ops} | {med} | {r.pct(0.99):.0f} | "
            f"{tput} | {cpu} | {r.server_cpu_s / r.ops * 1e6:.0f} |"
        )
    return "\n".join(lines)


def environment(pg: PostgresServer, server_version: str) -> str:
    return (
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, asyncio default event loop (no uvloop)\n"
        f"- PostgreSQL {server_version} on 127.0.0.1 (TCP), fsync=on, synchronous_commit=on, "
        f"otherwise default settings (shared_buffers=128MB)\n"
        f"- psycopg {psycopg.__version__} (libpq wrapper: {psycopg.pq.__impl__}, "
        f"libpq {psycopg.pq.version()}), asyncpg {asyncpg.__version__}\n"
    )


def write_markdown(path: Path, body: str) -> None:
    block = f"{MD_START}\n{body}\n{MD_END}"
    if path.exists():
        text = path.read_text()
        if MD_START in text and MD_END in text:
            pre, rest = text.split(MD_START, 1)
            _, post = rest.split(MD_END, 1)
            path.write_text(pre + block + post)
            return
        path.write_text(text.rstrip() + "\n\n" + block + "\n")
    else:
        path.write_text("# PostgreSQL driver benchmark\n\n" + block + "\n")


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> tuple[list[Result], str]:
    n, warmup = args.n, 200
    n_claim = max(100, n // 2)
    with PostgresServer() as pg:
        url = pg.create_database("bench")
        pg.execute(SCHEMA, dbname="bench")
        # Pending runs for the claim query. As specified it does not change
        # status, so every claim re-claims the same first 10 pending rows.
        await seed_runs(url, [f"0-pending-{i:05d}" for i in range(1000)], status="pending")
        pg.execute("ANALYZE", dbname="bench")
        conn = await asyncpg.connect(url)
        server_version = await conn.fetchval("SHOW server_version")
        await conn.close()

        for drv in DRIVERS:
            await check_correctness(drv, url)
        hazard = await psycopg_pipeline_prepare_hazard(url)
        print(f"  psycopg pipeline/prepare check: {hazard}", flush=True)

        results: list[Result] = []
        # Sequential phases: N rounds, driver order alternated, samples pooled.
        for phase, count in (("SELECT 1", n), ("fenced write", n), ("claim (10 rows)", n_claim)):
            per_driver: dict[str, list[Result]] = {d.name: [] for d in DRIVERS}
            for rnd in range(args.rounds):
                order = DRIVERS if rnd % 2 == 0 else DRIVERS[::-1]
                for drv in order:
                    r = await seq_phase(pg, drv, url, phase, count, warmup, f"r{rnd}")
                    per_driver[drv.name].append(r)
                    print(f"  {phase:16} {drv.name:8} round {rnd}: median {r.median_us:.0f} µs",
                          flush=True)  # fmt: skip
            results += [merge(per_driver[d.name]) for d in DRIVERS]

        writers, per_writer = 50, args.per_writer
        variants: list[tuple[Driver, str]] = []
        for how in ("pool10", "conn-per-writer", "batch-native", "batch-unnest"):
            variants += [(d, how) for d in DRIVERS]
        variants += [(APG, "apgpool"), (APG, "apgpool-noreset")]
        by_variant: dict[tuple[str, str], list[Result]] = {}
        for rnd in range(args.rounds):
            vorder = variants if rnd % 2 == 0 else variants[::-1]
            for vdrv, how in vorder:
                r = await concurrent_phase(pg, vdrv, url, how, writers, per_writer, f"r{rnd}")
                by_variant.setdefault((vdrv.name, how), []).append(r)
                print(f"  {r.how:40} {vdrv.name:8} round {rnd}: {r.throughput:.0f} writes/s",
                      flush=True)  # fmt: skip
        results += [merge(by_variant[(d.name, how)]) for d, how in variants]
        env = environment(pg, server_version)
        env += f"- psycopg pipeline + auto-prepare check: {hazard}\n"
        return results, env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="sequential ops per driver per round")
    ap.add_argument("--per-writer", type=int, default=100, help="writes per concurrent writer")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per phase (order alternates)")
    ap.add_argument("--quick", action="store_true", help="tiny run for a smoke test")
    ap.add_argument("--md", type=Path, default=_ROOT / "bench" / "pg_drivers.md")
    ap.add_argument("--no-md", action="store_true", help="print only")
    args = ap.parse_args()
    if args.quick:
        args.n, args.per_writer, args.rounds = 200, 10, 2
    t0 = time.perf_counter()
    results, env = asyncio.run(run(args))
    table = fmt_table(results)
    body = f"{env}- total benchmark time {time.perf_counter() - t0:.0f} s\n\n{table}"
    print()
    print(body)
    if not args.no_md and not args.quick:
        write_markdown(args.md, body)
        print(f"\nwrote {args.md}")


if __name__ == "__main__":
    main()
