# ruff: noqa: RUF001
"""Group ``signals``: signal → resume latency (``signal_latency.py``; DBOS's send → recv with
``dbos_workloads.py --workloads signal``), SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from ._shared import (
    BENCH,
    Ctx,
    Target,
    cell,
    load_json,
    med,
    pg_line,
    pg_meta,
    run_json,
    run_on_both,
    save,
    verdict,
    w,
    when,
)

NAME = "signals"
SECTION = "signals"
TITLE = "Signals (send → the waiting workflow resumes)"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    rep = "1" if ctx.quick else "3"
    n = "100" if ctx.quick else "200"
    run_on_both(ctx, "signals", "signal_latency.py", "--repeat", rep, "-n", n)
    if ctx.dbos_py:
        drep = "1" if ctx.quick else "2"
        save("results-signals-dbos-sqlite.json", run_json(ctx, "signals-dbos-sqlite", [
            ctx.dbos_py, str(BENCH / "dbos_workloads.py"), "--db", "sqlite", "--workloads",
            "signal", "--repeat", "1", "--dir", str(ctx.dir)]))
        if ctx.pg_url:
            save("results-signals-dbos-pg.json", run_json(ctx, "signals-dbos-pg", [
                ctx.dbos_py, str(BENCH / "dbos_workloads.py"), "--db", ctx.pg_url,
                "--workloads", "signal", "--repeat", drep]), pg_meta(ctx))


def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    ss, sp = load_json("results-signals-sqlite.json"), load_json("results-signals-pg.json")
    ds = load_json("results-signals-dbos-sqlite.json")
    dp = load_json("results-signals-dbos-pg.json")
    if ss is None and sp is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(sp), ""]
    a = L.append
    n = (ss or sp or {}).get("n", "?")
    a("**Method** (`signal_latency.py`; a fresh database per repeat, SQLite at "
      "synchronous=FULL; the first 10 samples of each repeat are warm-up):")
    a("")
    a(f"* **one process**: an in-process `Engine` starts a run of `ping_loop`, which loops on "
      f"`await perdure.wait_for_signal(\"ping\")`; latency = `perf_counter()` just before "
      f"`await handle.signal(\"ping\", i)` → the workflow's first line after "
      f"`wait_for_signal` returns (a hook it calls). {n} samples per repeat, 5 ms apart.")
    pn = (ss or sp or {}).get("parked_n", 30)
    a(f"* **two processes**: a worker process drives the run; the bench process is a client "
      f"(`Engine(worker=False)`) that sends. After each signal the workflow runs a step whose "
      f"body takes `time.time()`; latency = that − `time.time()` just before the send (same "
      f"host clock). The run is waiting in memory (a signal wait lingers `park_after` = 5 s "
      f"before parking). {n} samples per repeat, 10–60 ms apart (random, so sends do not lock "
      f"in phase with SQLite's 50 ms check).")
    a("* **two processes, parked run**: the same, but the worker has `park_after=0.05`: the "
      "run has parked (a row, no coroutine) when the signal comes, so the latency includes "
      f"the claim and the replay. One fresh run per sample, {pn} per repeat, each signalled "
      "0.20–0.25 s after its start.")
    a("* **DBOS 3.4** (`dbos_workloads.py --workloads signal`): one process, a workflow looping "
      "on `await DBOS.recv_async(\"ping\")`, `await DBOS.send_async(wf_id, i, \"ping\")` from "
      "outside; 100 samples 5 ms apart on PostgreSQL (2 repeats), 20 samples 5–1005 ms apart "
      "on SQLite (1 repeat: DBOS polls for messages every second there).")
    a("")
    a("p50 and p99 in ms: median over repeats of each repeat's percentile (min–max over "
      "repeats).")
    a("")
    a("| case | SQLite p50 | SQLite p99 | PostgreSQL p50 | PostgreSQL p99 |")
    a("|---|---|---|---|---|")
    for label, m in (("Perdure, one process", "local"),
                     ("Perdure, two processes (run waiting in memory)", "remote"),
                     ("Perdure, two processes, parked run", "parked")):
        a(f"| {label} | {cell(w(ss, m + '_p50'))} | {cell(w(ss, m + '_p99'))} | "
          f"{cell(w(sp, m + '_p50'))} | {cell(w(sp, m + '_p99'))} |")
    a(f"| DBOS 3.4, one process | {cell(w(ds, 'signal_p50'))} | {cell(w(ds, 'signal_p99'))} "
      f"| {cell(w(dp, 'signal_p50'))} | {cell(w(dp, 'signal_p99'))} |")
    a("")
    checks = [
        ("signals, one process, SQLite FULL: p50 ≤ 1 ms", med(ss, "local_p50"), 1.0),
        ("signals, one process, PostgreSQL: p50 ≤ 1 ms", med(sp, "local_p50"), 1.0),
        ("signals, two processes, PostgreSQL: p50 ≤ 5 ms", med(sp, "remote_p50"), 5.0),
    ]
    a("| target | measured p50 (ms) | verdict |")
    a("|---|---|---|")
    for label, v, lim in checks:
        t = Target("signals", label, "—" if v is None else f"{v:.2f} ms",
                   None if v is None else v <= lim)
        targets.append(t)
        a(f"| {label} | {t.measured} | {verdict(t.ok)} |")
    v = med(ss, "remote_p50")
    a(f"| (expected, not a target) two processes on SQLite ≈ the 50 ms change check | "
      f"{'—' if v is None else f'{v:.1f} ms'} | — |")
    a("")
    return "\n".join(L)
