"""Restate side of the benchmark: the workloads of ``perdure_workloads.py`` that map, on a local
Restate server with its default configuration (issue 14, target 7).

Runs under the Restate bench environment (``bench/setup_restate.sh``)::

    bench/.venv-restate/bin/python bench/restate_workloads.py --out restate.json

Per repeat: a fresh ``restate-server`` (the binary of the npm package
``@restatedev/restate-server``, default configuration: replicated loglet on the local
log-server, RocksDB WAL fsync on, 24 partitions; only its ports and base directory are set) in
a temporary directory under ``--dir``, a fresh service process (this script with ``--serve``:
the ``restate-sdk`` ASGI app under hypercorn, HTTP/2 cleartext, as the SDK's docs run it),
registered through the admin API; the bench process is a client of Restate's HTTP ingress
(httpx, HTTP/1.1 keep-alive). Workloads (20 uncounted warm-up calls each):

``seq0`` / ``seq5``
    500 sequential calls of the handler ``bench/wf0`` / ``bench/wf5`` (0 / 5 ``ctx.run_typed``
    steps of ``return i + 1``), each awaited (request-response through the ingress) before
    the next; the two alternate in blocks of 100. Derived: per-workflow ms, marginal
    per-step cost ``(seq5 - seq0) / 2500``.
``conc5``
    200 calls of ``bench/wf5`` at once, then all awaited -> steps/s.
``start_first_step``
    ``time.time()`` just before the call -> the first line of the first step body (its
    ``time.time()``, returned through the journal), 200 sequential samples.
``signal``
    the ``waiter`` workflow awaits its durable promise ``go``; the client resolves it through
    the workflow's shared handler ``go`` (``POST /waiter/<id>/go``); latency = ``time.time()``
    just before that call -> the run's first line after the promise resolved (read back by
    attaching to the workflow). 100 samples, each sent 50-100 ms after the run started
    waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import restate  # the bench's Restate environment only (bench/setup_restate.sh)

BENCH = Path(__file__).resolve().parent
SERVER = BENCH / ".venv-restate" / "npm" / "node_modules" / ".bin" / "restate-server"
N_SEQ, N_CONC, N_LATENCY, N_SIGNAL, N_WARMUP, STEPS = 500, 200, 200, 100, 20, 5
BLOCK = 100


# ---------------------------------------------------------------------------
# The service (served by ``--serve PORT`` in its own process)
# ---------------------------------------------------------------------------


bench = restate.Service("bench")


async def s(i: int) -> int:
    return i + 1


async def stamp() -> float:
    return time.time()


@bench.handler()
async def wf0(ctx: restate.Context, i: int) -> int:
    return i


@bench.handler()
async def wf5(ctx: restate.Context, i: int) -> int:
    for _ in range(STEPS):
        i = await ctx.run_typed("s", s, restate.RunOptions(), i)
    return i


@bench.handler()
async def first(ctx: restate.Context, i: int) -> float:
    return await ctx.run_typed("stamp", stamp)


waiter = restate.Workflow("waiter")


@waiter.main()
async def run(ctx: restate.WorkflowContext, i: int) -> float:
    await ctx.promise("go", type_hint=int).value()
    return time.time()  # the first line after the wait (re-taken on a replay)


@waiter.handler()
async def go(ctx: restate.WorkflowSharedContext, v: int) -> None:
    await ctx.promise("go", type_hint=int).resolve(v)


def serve(port: int) -> None:
    from hypercorn.asyncio import serve as hserve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.h2_max_concurrent_streams = 2**31 - 1
    config.accesslog = None
    asyncio.run(hserve(restate.app(services=[bench, waiter]), config, mode="asgi"))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The server and the client
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Restate:
    """A restate-server and the service process, for one repeat."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="restate-bench-", dir=root))
        self.ingress, self.admin, self.node, self.svc = (free_port() for _ in range(4))
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self) -> None:
        import httpx

        env = {**os.environ, "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{self.ingress}",
               "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{self.admin}",
               "RESTATE_BIND_ADDRESS": f"127.0.0.1:{self.node}",
               "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{self.node}/",
               "RESTATE_LISTEN_MODE": "tcp", "RESTATE_DISABLE_TELEMETRY": "true"}
        log = open(self.dir / "server.log", "wb")  # noqa: SIM115 (closed with the process)
        self.procs.append(subprocess.Popen(
            [str(SERVER), "--no-logo", "--base-dir", str(self.dir / "data"),
             "--node-name", "bench"], cwd=self.dir, env=env, stdout=log, stderr=log))
        svc_log = open(self.dir / "service.log", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.svc)], cwd=self.dir,
            stdout=svc_log, stderr=svc_log))
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = await client.get(f"http://127.0.0.1:{self.admin}/health")
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"restate-server did not start: {self.tail()}")
                await asyncio.sleep(0.1)
            while True:
                try:
                    r = await client.post(f"http://127.0.0.1:{self.admin}/deployments",
                                          json={"uri": f"http://127.0.0.1:{self.svc}"})
                    if r.status_code < 300:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"registration failed: {r.text} {self.tail()}")
                await asyncio.sleep(0.2)
            # The ingress knows the services a moment after the registration.
            while True:
                try:
                    r = await client.post(f"http://127.0.0.1:{self.ingress}/bench/wf0", json=0)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ingress not ready: {self.tail()}")
                await asyncio.sleep(0.1)

    def tail(self) -> str:
        out = []
        for name in ("server.log", "service.log"):
            f = self.dir / name
            if f.exists():
                out.append(f"--- {name}\n{f.read_text(errors='replace')[-2000:]}")
        return "\n".join(out)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, round(q / 100 * len(xs) + 0.5) - 1))
    return xs[k]


async def workloads(r: Restate, only: set[str]) -> dict[str, Any]:
    import httpx

    base = f"http://127.0.0.1:{r.ingress}"
    limits = httpx.Limits(max_connections=N_CONC + 10, max_keepalive_connections=N_CONC + 10)
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:

        async def call(path: str, arg: Any) -> Any:
            resp = await c.post(f"{base}/{path}", json=arg)
            resp.raise_for_status()
            return resp.json() if resp.content else None

        for i in range(N_WARMUP):
            await call("bench/wf5", i)
            await call("bench/wf0", i)
        # seq0 and seq5 alternate in blocks of 100: the per-step cost is the difference of
        # two ~50 ms figures, and a burst of other load on the box must hit both alike.
        for block in range(N_SEQ // BLOCK):
            for name in ("seq0", "seq5"):
                if name in only:
                    t0 = time.perf_counter()
                    for i in range(block * BLOCK, (block + 1) * BLOCK):
                        await call(f"bench/wf{name[-1]}", i)
                    out[name] = out.get(name, 0.0) + time.perf_counter() - t0
        if "conc5" in only:
            t0 = time.perf_counter()
            await asyncio.gather(*(call("bench/wf5", i) for i in range(N_CONC)))
            out["conc5"] = time.perf_counter() - t0
        if "start_first_step" in only:
            lat = []
            for i in range(N_WARMUP + N_LATENCY):
                t0 = time.time()
                t = await call("bench/first", i)
                if i >= N_WARMUP:
                    lat.append((t - t0) * 1e3)
            out["start_first_step"] = lat
        if "signal" in only:
            lat = []
            for i in range(N_WARMUP + N_SIGNAL):
                wid = f"w{i}-{random.getrandbits(32)}"
                r1 = await c.post(f"{base}/waiter/{wid}/run/send", json=i)
                r1.raise_for_status()
                await asyncio.sleep(random.uniform(0.05, 0.1))
                t0 = time.time()
                await call(f"waiter/{wid}/go", i)
                att = await c.get(f"{base}/restate/workflow/waiter/{wid}/attach")
                att.raise_for_status()
                if i >= N_WARMUP:
                    lat.append((att.json() - t0) * 1e3)
            out["signal"] = lat
    return out


def stat(values: list[float], unit: str, **extra: Any) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "samples": values, **extra}


def aggregate(raw: list[dict[str, Any]]) -> dict[str, Any]:
    w: dict[str, Any] = {}
    s0 = [x["seq0"] for x in raw if "seq0" in x]
    s5 = [x["seq5"] for x in raw if "seq5" in x]
    if s0:
        w["seq0_per_workflow"] = stat([s / N_SEQ * 1e3 for s in s0], "ms/workflow")
    if s5:
        w["seq5_per_workflow"] = stat([s / N_SEQ * 1e3 for s in s5], "ms/workflow")
    if s0 and s5:
        w["marginal_step"] = stat([(b - a) / (N_SEQ * STEPS) * 1e6 for a, b in zip(s0, s5,
                                                                                  strict=True)],
                                  "us/step")
    c5 = [x["conc5"] for x in raw if "conc5" in x]
    if c5:
        w["conc5_steps_per_s"] = stat([N_CONC * STEPS / s for s in c5], "steps/s")
    sf = [x["start_first_step"] for x in raw if "start_first_step" in x]
    if sf:
        w["start_first_step"] = stat([statistics.median(x) for x in sf], "ms (median of 200)")
        w["start_first_step_p99"] = stat([pct(x, 99) for x in sf], "ms (p99 of 200)")
    sg = [x["signal"] for x in raw if "signal" in x]
    if sg:
        w["signal_p50"] = stat([pct(x, 50) for x in sg], "ms (p50 per repeat)")
        w["signal_p99"] = stat([pct(x, 99) for x in sg], "ms (p99 per repeat)")
    return w


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.workloads.split(","))
    raw = []
    for k in range(args.repeat):
        r = Restate(args.dir)
        try:
            await r.start()
            raw.append(await workloads(r, only))
        except Exception:
            print(r.tail(), file=sys.stderr)
            raise
        finally:
            r.stop()
        print(f"[repeat {k + 1}/{args.repeat}] done", file=sys.stderr, flush=True)
    return aggregate(raw)


def version() -> str:
    try:
        out = subprocess.run([str(SERVER), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
        return out.split()[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workloads", default="seq0,seq5,conc5,start_first_step,signal")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=BENCH)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if not SERVER.exists():
        print(f"{SERVER} is missing: run bench/setup_restate.sh", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    w = asyncio.run(amain(args))
    import importlib.metadata as md

    report = {"engine": "restate", "version": version(),
              "sdk_version": md.version("restate-sdk"), "backend": "restate-server",
              "python": platform.python_version(), "repeat": args.repeat,
              "wall_seconds": time.perf_counter() - t0, "workloads": w,
              "notes": ["restate-server default configuration (replicated loglet on the local "
                        "log-server, RocksDB WAL fsync on); service: restate-sdk under "
                        "hypercorn (HTTP/2 cleartext) in its own process; client: httpx to "
                        "the ingress"]}
    for name, st in w.items():
        print(f"  {name:24s} median {st['median']:10.3f} [{st['min']:.3f} .. "
              f"{st['max']:.3f}] {st['unit']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
