# ruff: noqa: RUF001
"""Group ``timers``: lateness of 10,000 durable timers due within one second
(``timer_lateness.py``), SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from ._shared import (
    Ctx,
    Target,
    cell,
    load_json,
    med,
    pg_line,
    run_on_both,
    verdict,
    w,
    when,
)

NAME = "timers"
SECTION = "timers"
TITLE = "Durable timers (lateness of 10,000 timers due within one second)"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    rep = "1" if ctx.quick else "2"
    run_on_both(ctx, "timers", "timer_lateness.py", "--repeat", rep,
                pg_args=("--configs", "small,default,parked"))

def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    ts, tp = load_json("results-timers-sqlite.json"), load_json("results-timers-pg.json")
    if ts is None and tp is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(tp), ""]
    a = L.append
    a("**Method** (`timer_lateness.py`): a fresh database and one in-process `Engine`; N runs "
      "of `alarm(due_i)` are started at once (concurrent `engine.start`s, 500 at a time), "
      "`due_i = T0 + i/N`, so all N timers fall due within the same second, `T0` being 5 s "
      "(SQLite) or 10 s (PostgreSQL, slower to start 10,000 runs) after the first start; "
      "runs claimed more than `park_after` before their timer park instead of waiting in "
      "memory (the last column counts runs whose sleep was journaled just before `T0`). "
      "Each run does `await perdure.sleep_until(due)` and then a step whose body returns "
      "`time.time()`: lateness = that − `due_i`. Configurations: **small** = 100 runs, "
      "defaults; **default** = 10,000 runs, defaults (`concurrency=100`, `park_after=5`: a "
      "timer due within 5 s waits in memory and holds one of the 100 slots, so most runs are "
      "claimed only as slots free up); **wide** = 10,000 runs, `concurrency=10000` (all wait "
      "in memory); **parked** = 10,000 runs, `park_after=1` (all park as rows and are claimed "
      "back when due). Wake rate = runs woken per second between the first and the last "
      "wake: staying on time needs 10,000/s. Median over repeats (min–max); `wide` runs on "
      "SQLite only, to keep the whole benchmark under 15 minutes.")
    a("")
    a("| backend, config | p50 (ms) | p99 (ms) | max (ms) | first due (ms) | last woken (ms) | "
      "wake rate (runs/s) | N starts took (s) | runs sleeping at T0−0.2 s |")
    a("|---|---|---|---|---|---|---|---|---|")
    for bname, rep in (("SQLite FULL", ts), ("PostgreSQL", tp)):
        if rep is None:
            continue
        for c in ("small", "default", "wide", "parked"):
            if w(rep, f"{c}_p50_ms") is None:
                continue
            runs = w(rep, f"{c}_p50_ms").get("runs", "?")  # type: ignore[union-attr]
            a(f"| {bname}, {c} ({runs:,} runs) | {cell(w(rep, f'{c}_p50_ms'))} | "
              f"{cell(w(rep, f'{c}_p99_ms'))} | {cell(w(rep, f'{c}_max_ms'))} | "
              f"{cell(w(rep, f'{c}_first_due_ms'))} | {cell(w(rep, f'{c}_last_woken_ms'))} | "
              f"{cell(w(rep, f'{c}_drain_runs_per_s'))} | "
              f"{cell(w(rep, f'{c}_start_seconds'))} | "
              f"{cell(w(rep, f'{c}_sleeping_at_t0'))} |")
    a("")
    a("| target | measured p99 | verdict |")
    a("|---|---|---|")
    for bname, rep in (("SQLite FULL", ts), ("PostgreSQL", tp)):
        for c, what in (("default", "10,000 timers, defaults"), ("small", "100 timers")):
            v = med(rep, f"{c}_p99_ms")
            t = Target("timers", f"timers p99 lateness ≤ 20 ms, {bname}, {what}",
                       "—" if v is None else f"{v:.1f} ms", None if v is None else v <= 20)
            if c == "default":
                targets.append(t)
            a(f"| {t.label} | {t.measured} | {verdict(t.ok)} |")
    a("")
    return "\n".join(L)
