# ruff: noqa: RUF001
"""Group ``failover``: a worker process SIGKILLed mid-step, time until the other worker owns
its runs (``failover.py``), SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from ._shared import (
    Ctx,
    Target,
    cell,
    load_json,
    n_samples,
    pg_line,
    run_on_both,
    verdict,
    w,
    when,
)

NAME = "failover"
SECTION = "failover"
TITLE = "Failover (worker SIGKILLed mid-step → the other worker owns its runs)"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    rep = "3" if ctx.quick else "10"
    run_on_both(ctx, "failover", "failover.py", "--repeat", rep)

def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    fs, fp = load_json("results-failover-sqlite.json"), load_json("results-failover-pg.json")
    if fs is None and fp is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(fp), ""]
    a = L.append
    a("**Method** (`failover.py`): per repeat a fresh database; worker process A (engine "
      "defaults, `lease=10`) takes 100 runs whose one step sleeps an hour; once A owns all 100 "
      "with their steps executing, worker process B starts and idles; after a random 0.5–1 s "
      "(so the kill does not lock in phase with B's periodic checks) A gets SIGKILL and is "
      "reaped at once. The bench process polls the runs table's `owner` column every 2 ms: "
      "failover time = kill → B owns all 100 (and → B owns the first). Both workers on this "
      "host; SQLite: two processes on one file (B sees A's pid is gone); PostgreSQL: A's "
      "session advisory lock goes with its connection.")
    a("")
    a("| backend | kill → B owns all 100 (ms) | kill → B owns the first (ms) | repeats |")
    a("|---|---|---|---|")
    for bname, rep in (("SQLite FULL, 2 worker processes", fs),
                       ("PostgreSQL, 2 worker processes", fp)):
        if rep is None:
            continue
        a(f"| {bname} | {cell(w(rep, 'failover_all'))} | {cell(w(rep, 'failover_first'))} | "
          f"{n_samples(rep, 'failover_all')} |")
    a("")
    for bname, rep in (("SQLite", fs), ("PostgreSQL", fp)):
        st = w(rep, "failover_all")
        ok = None if st is None else st["max"] <= 1000
        t = Target("failover", f"failover ≤ 1 s, {bname} (worst of the repeats)",
                   "—" if st is None else f"median {st['median']:.0f} ms, worst "
                   f"{st['max']:.0f} ms", ok)
        targets.append(t)
    a("**Target** ≤ 1 s: " + "; ".join(f"{t.label.split(', ')[1].split(' (')[0]} "
                                       f"{t.measured} → {verdict(t.ok)}"
                                       for t in targets if t.section == "failover") + ".")
    a("")
    return "\n".join(L)
