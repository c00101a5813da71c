# ruff: noqa: RUF001
"""Group ``fanout``: one workflow gathering 1,000 steps (``perdure_workloads.py --workloads
fanout``), SQLite and PostgreSQL.
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
    w,
    when,
)

NAME = "fanout"
SECTION = "fanout"
TITLE = "Fan-out (one workflow gathering 1,000 steps)"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    rep = "3" if ctx.quick else "5"
    run_on_both(ctx, "fanout", "perdure_workloads.py", "--workloads", "fanout", "--repeat", rep)

def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    fs, fp = load_json("results-fanout-sqlite.json"), load_json("results-fanout-pg.json")
    if fs is None and fp is None:
        return None
    a_list: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(fp), ""]
    a = a_list.append
    a("**Method.** `perdure_workloads.py --workloads fanout`: one workflow "
      "`await perdure.gather(*(s(i) for i in range(1000)))` of trivial async steps, timed from "
      "`engine.start` to `result()`, after 20 warm-up workflows and one uncounted fan-out of "
      "100; a fresh database and engine per repeat (in-process worker, defaults).")
    a("")
    a("| backend | steps/s ↑ | repeats | for comparison: conc5 steps/s (200 workflows × 5 "
      "steps) |")
    a("|---|---|---|---|")
    sf = load_json("results-perdure-sqlite-full.json")
    pg = load_json("results-pg-perdure.json")
    for label, rep, conc in (("SQLite, synchronous=FULL", fs, sf), ("PostgreSQL", fp, pg)):
        if rep is None:
            continue
        a(f"| {label} | {cell(w(rep, 'fanout_steps_per_s'))} | "
          f"{n_samples(rep, 'fanout_steps_per_s')} | {cell(w(conc, 'conc5_steps_per_s'))} |")
    a("")
    a("**Target:** none was set; recorded for reference.")
    a("")
    return "\n".join(a_list)
