"""``python -m chaos``: a mixed load on real worker processes while faults are injected.

Three ``perdure worker`` processes share one database (SQLite file or PostgreSQL). A client
starts the orders of :mod:`chaos.app`, an outside sender signals the ones that wait for a
signal (each signal sent twice with one idempotency key), and a fault injector SIGKILLs a
random worker every few seconds and restarts it — and, on PostgreSQL, restarts the database
server too. At the end every invariant is checked and printed as a table; the exit status is 0
only if all hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.app import STEPS, engine, expected, helper, kind, order, setup_ledger
from perdure import Engine, RunStatus, WorkflowFailed

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Faults:
    """What the injector did."""

    kills: int = 0
    db_restarts: int = 0
    log: list[str] = field(default_factory=list)


class Workers:
    """The worker processes, restartable after a kill."""

    def __init__(self, url: str, count: int, env: dict[str, str], logdir: Path) -> None:
        self.url = url
        self.env = env
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.started = 0
        self.killed: set[int] = set()

    def start(self, slot: int) -> None:
        self.started += 1
        out = open(self.logdir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
        self.procs[slot] = subprocess.Popen(
            [sys.executable, "-m", "perdure", "worker", "chaos.app:engine", "--db", self.url],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.killed.add(proc.pid)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def inject(workers: Workers, faults: Faults, every: float, stop: asyncio.Event,
                 rng: random.Random) -> None:
    """SIGKILL a random worker every ``every`` seconds, and restart it."""
    began = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        slot = rng.randrange(len(workers.procs))
        workers.kill(slot)
        faults.kills += 1
        faults.log.append(f"{time.monotonic() - began:6.1f}s SIGKILL worker slot {slot}")
        workers.start(slot)


async def send_signals(url: str, ids: list[int], stop: asyncio.Event) -> int:
    """Signal every ``signal`` order twice with one idempotency key; returns sends done."""
    sent = 0
    async with Engine(url, workflows=[order, helper], worker=False) as client:
        for i in ids:
            for _ in range(2):
                while not stop.is_set():
                    try:
                        await client.signal(f"order-{i}", "go", i, idempotency_key=f"go-{i}")
                        sent += 1
                        break
                    except Exception:  # the database is restarting: try again
                        await asyncio.sleep(0.2)
            await asyncio.sleep(0.01)
    return sent


def expected_journal(i: int) -> list[tuple[str, str, str]]:
    """The crash-free journal shape of order ``i``: (kind, name, status) per entry."""
    k = kind(i)
    out: list[tuple[str, str, str]] = []
    if k == "saga":
        for _ in range(STEPS // 2 + 1):
            out.append(("step", "book", "completed"))
        out.append(("step", "refuse", "failed"))
        out += [("compensation", "book", "completed")] * (STEPS // 2 + 1)
        return out
    for n in range(STEPS):
        out.append(("step", "work", "completed"))
        if n == 3 and k == "timer":
            out.append(("sleep", "sleep", "completed"))
        if n == 5 and k == "signal":
            out.append(("signal", "go", "completed"))
        if n == 7 and k == "child":
            out += [("child", "helper", "completed"), ("join", f"order-{i}/{len(out)}",
                                                      "completed")]
    return out


def expected_effects(n_runs: int) -> int:
    """Distinct side effects (idempotency keys) of a crash-free run of all orders."""
    total = 0
    for i in range(n_runs):
        k = kind(i)
        total += (STEPS // 2 + 1) * 2 if k == "saga" else STEPS + (1 if k == "child" else 0)
    return total


async def check(url: str, n_runs: int, ledger: Path, faults: Faults, killed: set[int],
                concurrency: int) -> list[tuple[str, bool, str]]:
    """Every invariant, as (name, holds, detail)."""
    rows: list[tuple[str, bool, str]] = []
    wrong_outcome: list[str] = []
    wrong_journal: list[str] = []
    not_terminal: list[str] = []
    async with Engine(url, workflows=[order, helper], worker=False) as client:
        for i in range(n_runs):
            handle = client.handle(f"order-{i}")
            info = await handle.status()
            status, result = expected(i)
            if not info.status.terminal:
                not_terminal.append(f"order-{i} ({info.status})")
                continue
            got: Any = None
            try:
                got = await handle.result(timeout=1)
            except WorkflowFailed:
                got = None
            if (info.status.value, got) != (status, result):
                wrong_outcome.append(f"order-{i}: {info.status} {got!r}")
            journal = await handle.journal()
            seqs = [e.seq for e in journal]
            shape = [(e.kind, e.name, e.status) for e in journal]
            if seqs != list(range(len(journal))) or shape != expected_journal(i):
                wrong_journal.append(f"order-{i}")
        runs = await client.list_runs(limit=10 * n_runs)
        signals = await _signals(client)
    rows.append(("every run terminal (no run stuck)", not not_terminal,
                 f"{n_runs - len(not_terminal)}/{n_runs}" + (
                     f"; stuck: {', '.join(not_terminal[:5])}" if not_terminal else "")))
    rows.append(("crash-free status and result", not wrong_outcome,
                 f"{n_runs - len(wrong_outcome) - len(not_terminal)}/{n_runs} match" + (
                     f"; e.g. {wrong_outcome[:3]}" if wrong_outcome else "")))
    rows.append(("journal: each entry once, crash-free shape", not wrong_journal,
                 f"{n_runs - len(wrong_journal) - len(not_terminal)}/{n_runs} exact" + (
                     f"; e.g. {wrong_journal[:3]}" if wrong_journal else "")))
    children = [r for r in runs if r.parent_id is not None]
    want_children = sum(1 for i in range(n_runs) if kind(i) == "child")
    rows.append(("each child started once", len(children) == want_children,
                 f"{len(children)} child runs for {want_children} child orders"))
    want_signals = sum(1 for i in range(n_runs) if kind(i) == "signal")
    consumed = [s for s in signals if s[1] is not None]
    rows.append(("every signal consumed exactly once (resend deduplicated)",
                 len(signals) == want_signals and len(consumed) == want_signals,
                 f"{len(signals)} stored, {len(consumed)} consumed, {want_signals} expected"))
    raw, dedup = _ledger(ledger)
    repeats = sum(len(pids) - 1 for pids in raw.values() if len(pids) > 1)
    # A repeat is legitimate only if an earlier execution of that key was cut off by a kill
    # (the side effect happened, its journal write did not). Each kill can cut off at most the
    # steps its worker had in flight (up to its concurrency), not just one.
    orphaned = [key for key, pids in raw.items() if len(pids) > 1
                and not all(pid in killed for pid in pids[:-1])]
    want = expected_effects(n_runs)
    rows.append(("duplicate side effects only from killed workers", not orphaned,
                 f"{repeats} repeated executions, every earlier one by a SIGKILLed worker"
                 if not orphaned else f"unexplained repeats: {orphaned[:5]}"))
    bound = faults.kills * concurrency
    rows.append((f"duplicate side effects <= kills x in-flight ({concurrency})",
                 repeats <= bound,
                 f"{repeats} repeats, {faults.kills} kills (<= kills alone: "
                 f"{'yes' if repeats <= faults.kills else 'no'})"))
    rows.append(("deduplicated by idempotency key: exactly once", len(dedup) == want,
                 f"{len(dedup)} distinct effects, {want} expected"))
    return rows


async def _signals(client: Engine) -> list[tuple[str, int | None]]:
    """(run id, consumed seq) of every stored signal, read straight from the database."""
    store: Any = client.store
    if client.url.startswith("sqlite"):
        path = client.url[len("sqlite:///"):]
        conn = sqlite3.connect(path)
        try:
            return list(conn.execute("SELECT run_id, consumed_seq FROM perdure_signals"))
        finally:
            conn.close()
    fetch = getattr(store, "fetch_all", None)
    if fetch is None:
        import asyncpg

        conn = await asyncpg.connect(client.url)
        try:
            rows = await conn.fetch("SELECT run_id, consumed_seq FROM perdure_signals")
        finally:
            await conn.close()
        return [(r[0], r[1]) for r in rows]
    return list(await fetch("SELECT run_id, consumed_seq FROM perdure_signals"))


def _ledger(path: Path) -> tuple[dict[str, list[int]], set[str]]:
    conn = sqlite3.connect(path)
    try:
        raw: dict[str, list[int]] = {}
        for key, pid in conn.execute("SELECT key, pid FROM raw ORDER BY at"):
            raw.setdefault(key, []).append(pid)
        dedup = {k for (k,) in conn.execute("SELECT key FROM dedup")}
    finally:
        conn.close()
    return raw, dedup


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="perdure-chaos-"))
    server: Any = None
    if args.backend == "postgres":
        sys.path.insert(0, str(ROOT))
        from tests.pgserver import PostgresServer

        server = PostgresServer()
        server.start()
        url = server.create_database("chaos")
    else:
        url = f"sqlite:///{work / 'chaos.db'}"
    ledger = work / "ledger.db"
    setup_ledger(str(ledger))
    env = {**os.environ, "CHAOS_LEDGER": str(ledger), "PYTHONPATH": str(ROOT)}
    os.environ["CHAOS_LEDGER"] = str(ledger)
    faults = Faults()
    workers = Workers(url, args.workers, env, work)
    began = time.monotonic()
    try:
        for slot in range(args.workers):
            workers.start(slot)
        async with Engine(url, workflows=[order, helper], worker=False) as client:
            for i in range(args.runs):
                await client.start(order, i, id=f"order-{i}")
        print(f"started {args.runs} runs on {args.backend} with {args.workers} workers "
              f"(data in {work})", flush=True)
        stop = asyncio.Event()
        # The database restarts are spread over the run's progress (a third and two thirds
        # of the runs finished, for two), so they always land mid-run.
        restarts = [args.runs * (k + 1) // (args.db_restarts + 1)
                    for k in range(args.db_restarts)] if server is not None else []
        injector = asyncio.create_task(inject(workers, faults, args.kill_every, stop, rng))
        sender = asyncio.create_task(send_signals(
            url, [i for i in range(args.runs) if kind(i) == "signal"], stop))
        deadline = time.monotonic() + args.timeout
        async with Engine(url, workflows=[order, helper], worker=False) as client:
            while time.monotonic() < deadline:
                try:
                    done = sum(1 for r in await client.list_runs(limit=10 * args.runs)
                               if r.status in (RunStatus.COMPLETED, RunStatus.FAILED,
                                               RunStatus.CANCELLED) and r.parent_id is None)
                except Exception:  # the database is restarting
                    done = -1
                if done == args.runs:
                    break
                if restarts and done >= restarts[0]:
                    restarts.pop(0)
                    await asyncio.to_thread(server.restart)
                    faults.db_restarts += 1
                    faults.log.append(f"{time.monotonic() - began:6.1f}s restarted PostgreSQL "
                                      f"with {done}/{args.runs} runs finished")
                    continue
                await asyncio.sleep(0.5)
        stop.set()
        await injector
        await sender
        finished = time.monotonic() - began
        workers.stop_all()
        rows = await check(url, args.runs, ledger, faults, workers.killed, engine.concurrency)
    finally:
        workers.stop_all()
        if server is not None:
            server.stop()
    width = max(len(r[0]) for r in rows)
    print(f"\nchaos on {args.backend}: {args.runs} runs x {STEPS} steps, {args.workers} "
          f"workers, {faults.kills} SIGKILLs, {faults.db_restarts} database restarts, "
          f"{finished:.1f} s")
    print(f"{'invariant'.ljust(width)}  holds  detail")
    print(f"{'-' * width}  -----  ------")
    for name, ok, detail in rows:
        print(f"{name.ljust(width)}  {'yes' if ok else 'NO':5}  {detail}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "backend": args.backend, "runs": args.runs, "workers": args.workers,
            "kills": faults.kills, "db_restarts": faults.db_restarts, "seconds": finished,
            "invariants": [{"name": n, "holds": ok, "detail": d} for n, ok, d in rows],
        }, indent=2))
    return 0 if all(ok for _, ok, _ in rows) else 1


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=3.0, help="seconds between SIGKILLs")
    p.add_argument("--db-restarts", type=int, default=2, help="PostgreSQL restarts")
    p.add_argument("--expected-seconds", type=float, default=60.0,
                   help="(ignored; kept for old command lines) restarts follow progress")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", help="also write the result as JSON here")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
