# ruff: noqa: RUF001, RUF002
"""Group ``sqlite``: the SQLite comparison that opens ``RESULTS.md``: the raw durable-commit floor
(``raw_commit.py``), Perdure at ``synchronous=full`` and ``normal`` (``perdure_workloads.py``),
its write path layer by layer (``step_cost.py``) and DBOS 3.4 with its defaults and on WAL
(``dbos_workloads.py``), in interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._shared import BENCH, DBOS_PY, Target, load_json, med, merge, run_script, w

NAME = "sqlite"

# name -> (result file, description)
RUNS: dict[str, tuple[str, str]] = {
    "raw": ("results-raw-sqlite.json", "raw sqlite3 commit loop"),
    "perdure_full": ("results-perdure-sqlite-full.json", "Perdure, WAL + synchronous=FULL"),
    "perdure_normal": ("results-perdure-sqlite-normal.json", "Perdure, WAL + synchronous=NORMAL"),
    "dbos": ("results-dbos-sqlite.json", "DBOS 3.4, SQLite defaults (DELETE + FULL)"),
    "dbos_wal": ("results-dbos-sqlite-wal.json", "DBOS 3.4, WAL + FULL (tuned)"),
    "layers_full": ("results-perdure-step-layers-full.json", "Perdure write path, FULL"),
    "layers_normal": ("results-perdure-step-layers-normal.json", "Perdure write path, NORMAL"),
}


def measure(args: argparse.Namespace, rounds: int, py: str, frozen: list[str],
                   work: Path, log: Path, dbos_ok: bool,
                   skipped: list[str]) -> dict[str, dict[str, Any] | None]:
    """The SQLite comparison: raw floor, Perdure FULL/NORMAL, write-path layers, DBOS default
    and WAL, in interleaved rounds; writes the merged ``results-*.json``."""
    dbos_full = "seq0,seq5,conc5,start_first_step" + ("" if args.quick else ",seq0_handle,"
                                                       "seq5_handle")
    dbos_wal = "seq0,seq5,conc5,start_first_step"
    d = ["--dir", str(args.dir)]
    plan: dict[str, list[str]] = {
        "raw": [py, str(BENCH / "raw_commit.py"), "--repeat", "1", "-n",
                "1000" if args.quick else "2000", *d],
        "perdure_full": [*frozen, str(BENCH / "perdure_workloads.py"), "--repeat", "1",
                         "--synchronous", "full", "--workloads",
                         "seq0,seq5,conc5,start_first_step", *d],
        "perdure_normal": [*frozen, str(BENCH / "perdure_workloads.py"), "--repeat", "1",
                           "--synchronous", "normal", "--workloads",
                           "seq0,seq5,conc5,start_first_step", *d],
        "layers_full": [*frozen, str(BENCH / "step_cost.py"), "--repeat", "1", "-n",
                        "500" if args.quick else "1000", "--synchronous", "full", *d],
        "layers_normal": [*frozen, str(BENCH / "step_cost.py"), "--repeat", "1", "-n",
                          "1000" if args.quick else "2000", "--synchronous", "normal", *d],
    }
    if dbos_ok:
        plan["dbos"] = [str(DBOS_PY), str(BENCH / "dbos_workloads.py"), "--db", "sqlite",
                        "--repeat", "1", "--workloads", dbos_full, *d]
        plan["dbos_wal"] = [str(DBOS_PY), str(BENCH / "dbos_workloads.py"), "--db", "sqlite",
                            "--sqlite-wal", "--repeat", "1", "--workloads", dbos_wal, *d]

    per_round: dict[str, list[dict[str, Any]]] = {k: [] for k in plan}
    for r in range(rounds):
        print(f"== sqlite round {r + 1}/{rounds}", flush=True)
        for name, cmd in plan.items():
            out = work / f"{name}-{r}.json"
            if run_script([*cmd, "--out", str(out)], log) and out.exists():
                per_round[name].append(json.loads(out.read_text()))
            else:
                skipped.append(f"{name} round {r + 1} failed (log: {log})")

    reports: dict[str, dict[str, Any] | None] = {}
    for name, reps in per_round.items():
        if not reps:
            reports[name] = None
            continue
        merged = merge(reps)
        reports[name] = merged
        (BENCH / RUNS[name][0]).write_text(json.dumps(merged, indent=2) + "\n")
        print(f"wrote bench/{RUNS[name][0]}", flush=True)
    for name in RUNS:
        reports.setdefault(name, None)
    return reports


def stored_reports() -> dict[str, dict[str, Any] | None]:
    reports: dict[str, dict[str, Any] | None] = {}
    for name, (fname, _) in RUNS.items():
        f = BENCH / fname
        reports[name] = json.loads(f.read_text()) if f.exists() else None
    return reports


def _fmt_top(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(st: dict[str, Any] | None) -> str:
    """'median (min–max)' or '—'."""
    if st is None:
        return "—"
    if len(st.get("samples", [])) <= 1:
        return f"{_fmt_top(st['median'])}"
    return f"{_fmt_top(st['median'])} ({_fmt_top(st['min'])}–{_fmt_top(st['max'])})"


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None or not b["median"]:
        return "—"
    r = a["median"] / b["median"]
    return f"{r:.3g}"


def _ratio_val(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if a is None or b is None or not b["median"]:
        return None
    return float(a["median"] / b["median"])


def render(reports: dict[str, dict[str, Any] | None], ctx: dict[str, Any]) -> str:
    raw, pf, pn, db, dw = (reports.get(k) for k in
                           ("raw", "perdure_full", "perdure_normal", "dbos", "dbos_wal"))
    m = ctx["machine"]
    L: list[str] = []
    a = L.append
    a("# Benchmark results: Perdure vs DBOS Transact")
    a("")
    a("Two parts: the SQLite comparison (group `sqlite`), then more workloads (PostgreSQL, "
      "fan-out, signals, timers, failover, memory, claims at scale, chaos), each with its own "
      "date, code version and load, under \"More workloads\" with a targets summary.")
    a("")
    a(f"SQLite part generated by `python -m bench{' --quick' if ctx['quick'] else ''}` (group "
      f"`sqlite`), finished {ctx['date']} after {ctx['wall'] / 60:.1f} min; {ctx['rounds']} "
      "interleaved round(s). The raw numbers are in `bench/results-*.json`.")
    a("")
    a(f"Code measured: {ctx.get('git_start', ctx['git'])}, copied at the start of the run; every "
      "Perdure measurement of the run imports that copy (`bench/_snapshot_run.py`).")
    if ctx.get("code_changed"):
        a("")
        a("Changed in the live tree during the run, so **not** measured here: "
          + ", ".join(f"`{c}`" for c in ctx["code_changed"]) + ".")
    a("")
    a("## Machine")
    a("")
    a("| | |")
    a("|---|---|")
    a(f"| CPU | {m['cores']} cores, {m['cpu']} |")
    a(f"| memory | {m['mem']} |")
    a(f"| kernel | Linux {m['kernel']} |")
    a(f"| filesystem of the SQLite files | {m['fs']} (temp dirs under `bench/`) |")
    pi, di = ctx["project_interp"], ctx.get("dbos_interp")
    a(f"| Python / SQLite (Perdure, raw) | {pi['python']} / {pi['sqlite']} |")
    if di:
        a(f"| Python / SQLite (DBOS venv) | {di['python']} / {di['sqlite']} |")
    a(f"| versions | perdure {ctx['perdure_version']}"
      + (f", dbos {ctx['dbos_version']}" if ctx.get("dbos_version") else "") + " |")
    a(f"| load average (1/5/15 min) at start → end | {ctx['load_start']} → {ctx['load_end']} |")
    a("")
    a("Other jobs may share this 2-vCPU box: every figure is the median over rounds, with the "
      "(min–max) range over rounds in parentheses.")
    a("")
    a("## Durability settings")
    a("")
    a("| engine | journal_mode | synchronous | fsync per commit? |")
    a("|---|---|---|---|")
    a("| Perdure default (`synchronous=\"full\"`) | WAL | FULL (2) | yes, the WAL |")
    a("| Perdure `synchronous=\"normal\"` | WAL | NORMAL (1) | no (only at checkpoints): survives "
      "a process crash, may lose the last commits on power loss |")
    a("| DBOS 3.4 default | DELETE (rollback journal) | FULL (2) | yes, several (journal, db, "
      "dir) |")
    a("| DBOS 3.4, WAL variant (tuned, not its default) | WAL | FULL (2) | yes, the WAL |")
    a("| raw commit floor | each of the three above | | |")
    a("")
    a("## Method")
    a("")
    a("* Same workloads on both engines (`perdure_workloads.py`, `dbos_workloads.py`): "
      "`seq0`/`seq5` = 500 sequential workflows of 0/5 trivial `async` steps (`return i + 1`), "
      "each awaited before the next starts; `conc5` = 200 five-step workflows started at once, "
      "then all awaited; `start_first_step` = time from just before the start call to the first "
      "line of the first step body (200 sequential samples, median per round).")
    a("* Derived: per-workflow cost = seq time / 500; **marginal per-step cost** = "
      "(seq5 − seq0) / 2500 within each round (the same process, minutes apart), median over "
      "rounds; conc5 steps/s = 1000 / seconds.")
    a("* Perdure: one in-process `Engine(url, workflows=[...])` that both starts and executes "
      "(`h = await engine.start(wf, i); await h.result()`). DBOS: in-process, direct "
      "`await wf(i)` (its fastest path) and, where shown, `start_workflow_async` + "
      "`get_result()` (`*_handle`), which is the same shape as Perdure's start + result.")
    a("* Every round of every workload: a fresh SQLite file (under `bench/`, same filesystem), a "
      "fresh engine, 20 uncounted warm-up workflows. Each round runs each script once, in turn "
      "(raw, Perdure full, Perdure normal, DBOS default, DBOS WAL).")
    a("* Raw commit floor (`raw_commit.py`): Python `sqlite3`, one connection, "
      "`BEGIN; INSERT one row; COMMIT` × 2000 per round.")
    a("")

    # -- side by side -----------------------------------------------------------------------
    a("## Perdure vs DBOS (SQLite)")
    a("")
    if db is None and dw is None:
        a(f"**DBOS not measured in this run**: {ctx.get('dbos_note') or 'skipped'}.")
        a("")
    rows = [
        ("marginal cost per step (µs) ↓", "marginal_step", "marginal_step_handle"),
        ("seq0: per workflow, 0 steps (ms) ↓", "seq0_per_workflow", "seq0_handle_per_workflow"),
        ("seq5: per workflow, 5 steps (ms) ↓", "seq5_per_workflow", "seq5_handle_per_workflow"),
        ("conc5: concurrent steps/s ↑", "conc5_steps_per_s", None),
        ("start → first step, median (ms) ↓", "start_first_step", None),
        ("start → first step, p99 (ms) ↓", "start_first_step_p99", None),
    ]
    a("| metric | Perdure FULL | Perdure NORMAL | DBOS default (DELETE+FULL) | DBOS WAL+FULL | "
      "**Perdure FULL / DBOS default** | Perdure FULL / DBOS WAL | Perdure NORMAL / DBOS WAL |")
    a("|---|---|---|---|---|---|---|---|")
    for label, key, _ in rows:
        a(f"| {label} | {_cell(w(pf, key))} | {_cell(w(pn, key))} | {_cell(w(db, key))} | "
          f"{_cell(w(dw, key))} | **{ratio(w(pf, key), w(db, key))}** | "
          f"{ratio(w(pf, key), w(dw, key))} | {ratio(w(pn, key), w(dw, key))} |")
    a("")
    a("Ratios are Perdure / DBOS of the medians: below 1 is better for costs and latencies, above "
      "1 is better for steps/s.")
    if w(db, "marginal_step_handle") is not None:
        a("")
        a("DBOS through its handle API (`start_workflow_async` + `get_result()`, the same shape as "
          "Perdure's `start` + `result`):")
        a("")
        a("| metric | Perdure FULL | DBOS default, handle API | Perdure FULL / DBOS |")
        a("|---|---|---|---|")
        for label, key, hkey in rows[:3]:
            if hkey:
                a(f"| {label} | {_cell(w(pf, key))} | {_cell(w(db, hkey))} | "
                  f"{ratio(w(pf, key), w(db, hkey))} |")
    a("")

    # -- vs raw -----------------------------------------------------------------------------
    a("## Perdure vs the raw durable commit")
    a("")
    if raw is None:
        a("_raw_commit.py failed in this run._")
    else:
        rw = raw["workloads"]
        a("| | raw commit (µs) | Perdure marginal step (µs) | step / commit |")
        a("|---|---|---|---|")
        a(f"| WAL + FULL | {_cell(rw.get('wal_full'))} | {_cell(w(pf, 'marginal_step'))} | "
          f"{ratio(w(pf, 'marginal_step'), rw.get('wal_full'))} |")
        a(f"| WAL + NORMAL | {_cell(rw.get('wal_normal'))} | {_cell(w(pn, 'marginal_step'))} | "
          f"{ratio(w(pn, 'marginal_step'), rw.get('wal_normal'))} |")
        a(f"| DELETE + FULL (DBOS's setting) | {_cell(rw.get('delete_full'))} | "
          f"DBOS: {_cell(w(db, 'marginal_step'))} | "
          f"DBOS: {ratio(w(db, 'marginal_step'), rw.get('delete_full'))} |")
        a("")
        a(f"Raw figures are the mean µs per commit over {raw.get('n', '?')} commits per round; "
          "p50/p99 per "
          "commit: " + ", ".join(
              f"{k} {rw[k]['p50_us']:.0f}/{rw[k]['p99_us']:.0f}" for k in rw
              if "p50_us" in rw[k]) + " µs.")
    a("")

    # -- decomposition ----------------------------------------------------------------------
    lf, ln = reports.get("layers_full"), reports.get("layers_normal")
    if lf or ln:
        a("## Where a step's time goes (write path, layer by layer)")
        a("")
        a("`step_cost.py`: one journal write at a time, each layer adding one thing to the one "
          "above it (µs per operation).")
        a("")
        a("| layer | FULL | NORMAL |")
        a("|---|---|---|")
        layer_rows = [
            ("raw_commit", "raw `BEGIN; INSERT; COMMIT` on the caller's thread"),
            ("engine_sql_nosp", "the engine's fenced `put_entry` INSERT in BEGIN IMMEDIATE…COMMIT"
             ", on the caller's thread"),
            ("engine_sql", "… plus SAVEPOINT/RELEASE around it (only batched writes since "
             "4222d30)"),
            ("hop_read", "asyncio → DB thread → asyncio round trip, no-op read"),
            ("put_entry", "`await storage.put_entry(...)`: SQL + commit + the thread round trip"),
            ("ctx_write", "`await RunContext.write(entry)`: + pending list and gather"),
        ]
        for key, label in layer_rows:
            a(f"| {label} | {_cell(w(lf, key))} | {_cell(w(ln, key))} |")
        a(f"| **Perdure marginal step** (from seq5 − seq0 above) | "
          f"{_cell(w(pf, 'marginal_step'))} | {_cell(w(pn, 'marginal_step'))} |")
        a("")

    # -- targets ----------------------------------------------------------------------------
    a("## Targets")
    a("")
    a("| target | measured | met? |")
    a("|---|---|---|")

    def target(label: str, value: float | None, ok: bool | None, fmt: str) -> None:
        if value is None:
            a(f"| {label} | — | not measured |")
        else:
            a(f"| {label} | {fmt.format(value)} | {'yes' if ok else '**no**'} |")

    r1 = _ratio_val(w(pf, "marginal_step"), w(db, "marginal_step"))
    target("per-step cost ≤ 1/10 of DBOS on SQLite (Perdure FULL / DBOS default)", r1,
           r1 is not None and r1 <= 0.1, "{:.3f}")
    r1w = _ratio_val(w(pf, "marginal_step"), w(dw, "marginal_step"))
    target("… and against DBOS tuned to WAL (Perdure FULL / DBOS WAL)", r1w,
           r1w is not None and r1w <= 0.1, "{:.3f}")
    rw = raw["workloads"] if raw else {}
    r2 = _ratio_val(w(pf, "marginal_step"), rw.get("wal_full"))
    target("per-step cost within 2× of the raw durable commit (Perdure FULL / raw WAL+FULL)", r2,
           r2 is not None and r2 <= 2, "{:.2f}×")
    r2n = _ratio_val(w(pn, "marginal_step"), rw.get("wal_normal"))
    if r2n is not None:
        a(f"| (for information: Perdure NORMAL / raw WAL+NORMAL; not a target, the commit is "
          f"not durable) | {r2n:.2f}× | — |")
    r3 = _ratio_val(w(pf, "conc5_steps_per_s"), w(db, "conc5_steps_per_s"))
    target("concurrent throughput ≥ 15× DBOS (Perdure FULL / DBOS default conc5)", r3,
           r3 is not None and r3 >= 15, "{:.1f}×")
    r3w = _ratio_val(w(pf, "conc5_steps_per_s"), w(dw, "conc5_steps_per_s"))
    target("… against DBOS WAL", r3w, r3w is not None and r3w >= 15, "{:.1f}×")
    a("")

    # -- traffic ----------------------------------------------------------------------------
    a("## Database traffic per workflow")
    a("")
    for label, rep, how in (("Perdure", pf, "sqlite3 trace callback on the engine's connection, "
                             "claim loop included"),
                            ("DBOS", db, "SQLAlchemy event trace")):
        tt = rep.get("txn_trace") if rep else None
        if not tt:
            continue
        a(f"{label} ({how}):")
        a("")
        for wf in ("wf0", "wf5"):
            t = tt[wf]
            if label == "Perdure":
                a(f"* {wf}: {t['write_transactions']} write transactions "
                  f"({t['write_transactions_with_changes']} that change rows, so fsync at FULL), "
                  f"{t['autocommit_reads']} autocommit reads. Write transactions: "
                  + "; ".join(f"[{x}]" for x in t["transactions"]))
            else:
                a(f"* {wf}: {t['write_transactions']} write transactions, "
                  f"{t['transactions']} in all: "
                  + "; ".join(f"[{x}]" for x in t["statements"]))
        a("")
    a("Each trace is the leanest of the rounds' traces. A trace can still include background "
      "writes: for example, a lone `UPDATE workflow_status` before DBOS's `INSERT; INSERT` "
      "belongs to the previous workload. The clean counts are Perdure wf0 = 3 commits "
      "that change rows, DBOS wf0 = 2.")
    a("")

    # -- notes ------------------------------------------------------------------------------
    if ctx.get("skipped"):
        a("## Skipped or failed in this run")
        a("")
        for s in ctx["skipped"]:
            a(f"* {s}")
        a("")
    return "\n".join(L)


def targets(targets: list[Target]) -> None:
    """The SQLite comparison's targets (also in its own table above), for the summary."""
    pf, db, dw, raw = (load_json(f) for f in (
        "results-perdure-sqlite-full.json", "results-dbos-sqlite.json",
        "results-dbos-sqlite-wal.json", "results-raw-sqlite.json"))
    p_step, d_step, w_step = (med(r, "marginal_step") for r in (pf, db, dw))
    raw_full = med(raw, "wal_full")
    p_c, d_c = med(pf, "conc5_steps_per_s"), med(db, "conc5_steps_per_s")

    def add(label: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> None:
        targets.append(Target("sqlite", label, "—" if value is None else fmt.format(value),
                              None if value is None else ok(value)))

    add("SQLite: per-step cost ≤ 1/10 of DBOS 3.4 default (Perdure FULL / DBOS)",
        p_step / d_step if p_step and d_step else None, lambda v: v <= 0.1, "{:.3f}")
    add("SQLite: … against DBOS tuned to WAL", p_step / w_step if p_step and w_step else None,
        lambda v: v <= 0.1, "{:.3f}")
    add("SQLite: per-step cost within 2× the raw durable commit (WAL+FULL)",
        p_step / raw_full if p_step and raw_full else None, lambda v: v <= 2, "{:.2f}×")
    add("SQLite: concurrent throughput (conc5) ≥ 15× DBOS default",
        p_c / d_c if p_c and d_c else None, lambda v: v >= 15, "{:.1f}×")
