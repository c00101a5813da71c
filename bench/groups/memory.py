"""Group ``memory``: worker RSS with 100,000 parked runs and claim latency beside them
(``memory.py``), SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from ._shared import (
    Ctx,
    Target,
    load_json,
    pg_line,
    run_on_both,
    when,
)

NAME = "memory"
SECTION = "memory"
TITLE = "Memory (100,000 parked runs) and claim latency beside them"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    steps = "10000,30000" if ctx.quick else "10000,100000"
    run_on_both(ctx, "memory", "memory.py", "--steps", steps, pg_args=("--held", "0"))

def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    ms, mp = load_json("results-memory-sqlite.json"), load_json("results-memory-pg.json")
    if ms is None and mp is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(mp), ""]
    a = L.append
    a("**Method** (`memory.py`): one worker process (engine defaults) on a fresh database; "
      "the bench process is a client that starts runs of `sleeper` (`await perdure.sleep("
      "timedelta(days=1))`) in concurrent batches of 1,000 `engine.start`s while the worker "
      "claims them, journals each timer and parks each run (status `waiting`: a row, no "
      "coroutine). SQLite stays at synchronous=FULL (no shortcut was needed: concurrent starts "
      "are group-committed). At 0, 10,000 and 100,000 parked runs the worker reports from "
      "inside its own process: VmRSS and VmHWM (peak) from `/proc/self/status` (no forced GC), "
      "how many runs it holds in memory, start → first step of 50 new runs started in the "
      "worker process itself, and the time of 100 claim statements (`store.claim`, nothing "
      "due) and `next_wake` reads; on PostgreSQL once more after `VACUUM (ANALYZE)` of the "
      "runs table. For comparison, on SQLite: a worker with `park_after` of "
      "two days and `concurrency=10100`, so that 10,000 such sleeps are held in memory as "
      "coroutines, and 10,000 bare `asyncio.sleep` tasks added to the same process.")
    a("")
    for bname, rep in (("SQLite FULL", ms), ("PostgreSQL", mp)):
        if rep is None:
            continue
        summ = rep["summary"]
        a(f"**{bname}** ({rep.get('repeat', 1)} repeat(s); medians):")
        a("")
        a("| worker state | VmRSS (MiB) | VmHWM (MiB) | runs in memory | start → first step "
          "p50 / p99 (ms) | claim statement p50 / p99 (ms) | next_wake p50 (ms) |")
        a("|---|---|---|---|---|---|---|")
        for row in summ["rows"]:
            def f(k: str, fmt: str = "{:.2f}", row: dict[str, Any] = row) -> str:
                v = row.get(k)
                if v is None:
                    return "—"
                x = float(v["median"])
                return f"{x / 1024:.1f}" if k.endswith("_kb") else fmt.format(x)

            a(f"| {row['label']} | {f('rss_kb')} | {f('hwm_kb')} | {f('active', '{:.0f}')} | "
              f"{f('start_first_step_p50_ms')} / {f('start_first_step_p99_ms')} | "
              f"{f('claim_p50_ms', '{:.3f}')} / {f('claim_p99_ms', '{:.3f}')} | "
              f"{f('next_wake_p50_ms', '{:.3f}')} |")
        a("")
        fills = summ.get("fill") or []
        if fills:
            parts = [f"{x['to'] - x['from']:,} runs started in {x['start_seconds']:.1f} s, all "
                     f"parked {x['parked_seconds']:.1f} s after the first start"
                     for x in fills[0]]
            a("Filling: " + "; ".join(parts) + f". Database size at the end: "
              f"{(summ.get('db_bytes') or [0])[0] / 2**20:.0f} MiB.")
            a("")
        rows = summ["rows"]
        zero = next((r for r in rows if r["parked"] == 0 and "rss_kb" in r
                     and "probe" in r["label"]), None)
        ten = next((r for r in rows if r["parked"] == 10_000), None)
        hundred = next((r for r in rows if r["parked"] == 100_000
                        and "VACUUM" not in r["label"]), None)
        held = summ.get("held")
        if zero and ten:
            d10 = (ten["rss_kb"]["median"] - zero["rss_kb"]["median"]) / 1024
            line = f"10,000 parked runs: VmRSS {d10:+.1f} MiB over the idle worker"
            if hundred:
                d100 = (hundred["rss_kb"]["median"] - zero["rss_kb"]["median"]) / 1024
                line += f"; 100,000: {d100:+.1f} MiB"
            if held:
                dh = (held["held_rss_kb"] - held["base_rss_kb"]) / 1024
                dt = (held["plus_tasks_rss_kb"] - held["held_rss_kb"]) / 1024
                line += (f". The same 10,000 sleeps held in memory instead: {dh:+.1f} MiB "
                         f"(and 10,000 bare asyncio tasks on top: {dt:+.1f} MiB)")
            a(line + ".")
            a("")
            ok = None
            if held:
                ok = d10 < (held["held_rss_kb"] - held["base_rss_kb"]) / 1024 / 5
                targets.append(Target(
                    "memory", f"memory, {bname}: 10,000 parked runs cost rows, not coroutines "
                    "(RSS growth < 1/5 of holding them in memory)",
                    f"{d10:+.1f} MiB parked vs {dh:+.1f} MiB held", ok))
            if hundred:
                targets.append(Target(
                    "memory", f"memory, {bname}: 100,000 parked runs, worker RSS (no target; "
                    "claim latency unchanged?)", f"{d100:+.1f} MiB; start→first step p50 "
                    f"{hundred['start_first_step_p50_ms']['median']:.2f} ms vs "
                    f"{zero['start_first_step_p50_ms']['median']:.2f} ms at 0", None))
    a("**Targets:** none numeric; the claim is that parked runs cost rows, not coroutines: "
      "see the verdicts in the summary table at the top of this part.")
    a("")
    return "\n".join(L)
