# ruff: noqa: RUF001
"""Group ``pg``: the SQLite workloads on Perdure and DBOS 3.4 on one throwaway PostgreSQL
server, the raw asyncpg/psycopg commit floor and the PostgreSQL write path layer by layer
(``perdure_workloads.py``, ``dbos_workloads.py``, ``raw_commit.py``, ``pg_step_cost.py``), in
3 interleaved rounds.
"""

from __future__ import annotations

from typing import Any

from ._shared import (
    BENCH,
    Ctx,
    Target,
    cell,
    fmt,
    load_json,
    med,
    merge,
    n_samples,
    perdure_cmd,
    pg_line,
    pg_meta,
    run_json,
    save,
    verdict,
    w,
    when,
)

NAME = "pg"
SECTION = "postgresql"
TITLE = "PostgreSQL backend (Perdure vs DBOS 3.4 on the same server, raw commit floor)"
NEEDS_PG = True
IN_ALL = True


def run(ctx: Ctx) -> None:
    if ctx.pg_url is None:
        ctx.skipped.append("pg: no PostgreSQL server")
        return
    rounds = 1 if ctx.quick else 3
    wl = "seq0,seq5,conc5,start_first_step"
    plan: dict[str, list[str]] = {
        "pg_raw": [ctx.py, str(BENCH / "raw_commit.py"), "--db", ctx.pg_url, "--repeat", "1",
                   "-n", "1000" if ctx.quick else "2000"],
        "pg_perdure": perdure_cmd(ctx, "perdure_workloads.py", "--db", ctx.pg_url, "--repeat", "1",
                               "--workloads", wl),
        "pg_layers": perdure_cmd(ctx, "pg_step_cost.py", "--db", ctx.pg_url, "--repeat", "1",
                              "-n", "500" if ctx.quick else "1000"),
    }
    if ctx.dbos_py:
        plan["pg_dbos"] = [ctx.dbos_py, str(BENCH / "dbos_workloads.py"), "--db", ctx.pg_url,
                           "--repeat", "1", "--workloads", wl]
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in plan}
    for r in range(rounds):
        print(f"== pg round {r + 1}/{rounds}", flush=True)
        for name, cmd in plan.items():
            rep = run_json(ctx, f"{name}-{r}", cmd)
            if rep is not None:
                per[name].append(rep)
    for name, reps in per.items():
        if reps:
            save(f"results-{name.replace('_', '-')}.json", merge(reps), pg_meta(ctx))


def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    pp, dp, rp, lp = (load_json(f) for f in ("results-pg-perdure.json", "results-pg-dbos.json",
                                         "results-pg-raw.json", "results-pg-layers.json"))
    if pp is None and dp is None:
        return None
    sf = load_json("results-perdure-sqlite-full.json")
    L: list[str] = [f"## {TITLE}", "", when(gctx), "", pg_line(pp or dp), ""]
    a = L.append
    a("**Method.** The SQLite workloads above, unchanged, on one throwaway PostgreSQL server: "
      "`perdure_workloads.py --db postgresql://…` (a fresh database per round, in-process "
      "`Engine`, asyncpg) and `dbos_workloads.py --db postgresql://…` (DBOS 3.4 with its "
      "defaults: a fresh system database per round, created by `DBOS.launch()`, psycopg), "
      f"interleaved over {n_samples(pp, 'seq0') or '?'} rounds; the raw floor is `raw_commit.py "
      "--db postgresql://…`: one single-row `INSERT` made durable per iteration, 2,000 per "
      "round, with asyncpg (autocommit: one round trip and one WAL flush) and psycopg "
      "(INSERT + COMMIT: two round trips). Median over rounds (min–max).")
    a("")
    rows = [
        ("marginal cost per step (µs) ↓", "marginal_step"),
        ("seq0: per workflow, 0 steps (ms) ↓", "seq0_per_workflow"),
        ("seq5: per workflow, 5 steps (ms) ↓", "seq5_per_workflow"),
        ("conc5: concurrent steps/s ↑", "conc5_steps_per_s"),
        ("start → first step, median (ms) ↓", "start_first_step"),
        ("start → first step, p99 (ms) ↓", "start_first_step_p99"),
    ]
    a("| metric | Perdure, PostgreSQL | DBOS 3.4, PostgreSQL | **Perdure / DBOS** | "
      "(Perdure, SQLite FULL, above) |")
    a("|---|---|---|---|---|")
    for label, key in rows:
        r = None
        pm, dm = med(pp, key), med(dp, key)
        if pm is not None and dm:
            r = pm / dm
        a(f"| {label} | {cell(w(pp, key))} | {cell(w(dp, key))} | "
          f"**{'—' if r is None else f'{r:.3g}'}** | {cell(w(sf, key))} |")
    a("")
    if rp is not None:
        rw = rp["workloads"]
        a("Raw durable single-row commit on the same server (µs per commit, mean over each "
          "round's 2,000; p50/p99 per commit):")
        a("")
        a("| driver | µs / commit | p50 / p99 | Perdure marginal step ÷ this |")
        a("|---|---|---|---|")
        pm = med(pp, "marginal_step")
        for key, label in (("pg_asyncpg", "asyncpg, autocommit INSERT (1 round trip)"),
                           ("pg_asyncpg_txn", "asyncpg, BEGIN; INSERT; COMMIT"),
                           ("pg", "psycopg 3, INSERT + commit()")):
            st = rw.get(key)
            if st is None:
                continue
            ratio_s = f"{pm / st['median']:.2f}×" if pm else "—"
            a(f"| {label} | {cell(st)} | {st['p50_us']:.0f} / {st['p99_us']:.0f} | "
              f"{ratio_s} |")
        a("")
    if lp is not None:
        a("Where a Perdure step's time goes on PostgreSQL (`pg_step_cost.py`: 1,000 sequential "
          "journal writes per layer per round, µs each; each layer adds one thing to the one "
          "above):")
        a("")
        a("| layer | µs per write |")
        a("|---|---|")
        for key, label in (
                ("raw_insert", "asyncpg, prepared plain `INSERT`, autocommit (the floor)"),
                ("fenced_sql", "the engine's `put_entries` statement for one entry (unnest of "
                 "13 arrays, the run's row `FOR SHARE`, `ON CONFLICT`, `RETURNING`), on a "
                 "dedicated connection"),
                ("put_entry", "`await storage.put_entry(...)`: + the group-commit writer task "
                 "and the pool"),
                ("send_signal", "(signal path) `storage.send_signal`: one statement + commit"),
                ("consume_signal", "(signal path) the run's `consume_signal`: one statement + "
                 "commit"),
                ("noop_roundtrip", "(reference) `SELECT 1` through the pool")):
            a(f"| {label} | {cell(w(lp, key))} |")
        a(f"| **Perdure marginal step** (seq5 − seq0 above) | {cell(w(pp, 'marginal_step'))} "
          "|")
        a("")
    pm, dm = med(pp, "marginal_step"), med(dp, "marginal_step")
    r = pm / dm if pm is not None and dm else None
    t = Target("postgresql", "PostgreSQL: per-step cost ≤ 1/8 of DBOS 3.4 on the same server",
               "—" if r is None else f"{r:.3f} ({fmt(pm or 0)} vs {fmt(dm or 0)} µs)",
               None if r is None else r <= 1 / 8)
    targets.append(t)
    a(f"**Target** per-step cost ≤ 1/8 of DBOS's (0.125): measured **{t.measured}** → "
      f"{verdict(t.ok)}.")
    a("")
    return "\n".join(L)
