# ruff: noqa: RUF001
"""Group ``claims``: start → first step and the claim statement with 1,000,000 finished runs
in the runs table (``claim_scale.py``), SQLite and PostgreSQL.
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
    w,
    when,
)

NAME = "claims"
SECTION = "claims"
TITLE = "Claim latency with 1,000,000 rows in the runs table"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    rows = "200000" if ctx.quick else "1000000"
    run_on_both(ctx, "claims", "claim_scale.py", "--rows", rows)

def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    cs, cp = load_json("results-claims-sqlite.json"), load_json("results-claims-pg.json")
    if cs is None and cp is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(cp), ""]
    a = L.append
    a("**Method** (`claim_scale.py`): a fresh database and an in-process `Engine` (defaults). "
      "Measured with an empty runs table, then again after bulk-inserting 1,000,000 completed "
      "runs of the same workflow with one `INSERT … SELECT` (recursive CTE on SQLite, "
      "`generate_series` on PostgreSQL, then `VACUUM (ANALYZE)` there as autovacuum would "
      "soon do, and a WAL checkpoint on SQLite): start → first step (`perf_counter` before "
      "`engine.start` → first line of the step body) and the claim statement "
      "(`store.claim(...)` for the worker's workflows when nothing is due, i.e. what every "
      "claim-loop cycle runs), plus the `next_wake` read. 3 blocks of 100 samples per phase; "
      "median over blocks of each block's percentile (min–max).")
    a("")
    a("| backend | table | start → first step p50 (ms) | p99 (ms) | claim p50 (ms) | "
      "claim p99 (ms) | next_wake p50 (ms) |")
    a("|---|---|---|---|---|---|---|")
    for bname, rep in (("SQLite FULL", cs), ("PostgreSQL", cp)):
        if rep is None:
            continue
        for ph, label in (("empty", "empty"), ("full", f"{rep.get('rows') or 0:,} rows")):
            a(f"| {bname} | {label} | {cell(w(rep, f'{ph}_sfs_p50'))} | "
              f"{cell(w(rep, f'{ph}_sfs_p99'))} | {cell(w(rep, f'{ph}_claim_p50'))} | "
              f"{cell(w(rep, f'{ph}_claim_p99'))} | {cell(w(rep, f'{ph}_wake_p50'))} |")
    a("")
    for bname, rep in (("SQLite", cs), ("PostgreSQL", cp)):
        if rep is None:
            continue
        a(f"{bname}: {rep.get('rows') or 0:,} rows loaded in {rep.get('fill_seconds') or 0:.1f} "
          f"s. Claim query plan: " + "; ".join(f"`{p.strip()}`" for p in rep.get("plan") or []))
        a("")
        e, f = med(rep, "empty_claim_p50"), med(rep, "full_claim_p50")
        es, fs_ = med(rep, "empty_sfs_p50"), med(rep, "full_sfs_p50")
        ok = None if None in (e, f, es, fs_) else (f <= 2 * e and fs_ <= 1.5 * es)  # type: ignore[operator]
        targets.append(Target(
            "claims", f"claims with 1M rows, {bname}: claim and start→first step do not grow "
            "(≤ 2× / ≤ 1.5× the empty table)",
            f"claim {e:.3f} → {f:.3f} ms, start→first step {es:.2f} → {fs_:.2f} ms"
            if None not in (e, f, es, fs_) else "—", ok))
    a("**Target:** no number was given; read as \"the claim does not degrade with history\" "
      "(claim p50 ≤ 2× and start → first step p50 ≤ 1.5× the empty table's).")
    a("")
    return "\n".join(L)
