# ruff: noqa: RUF001, RUF002
"""Run the whole benchmark and rewrite ``bench/RESULTS.md``.

From the repository root::

    python -m bench                        # every group but chaos (~15 min on the 2-vCPU box)
    python -m bench --only waits,pg        # some groups; the others keep their stored results
    python -m bench --only chaos           # the chaos harness on both backends (~2 min)
    python -m bench --quick                # a smoke run of everything (~5 min)
    python -m bench --render-only          # measure nothing, rewrite RESULTS.md

Groups (``--only``; ``waits`` = signals,timers; ``all`` = everything but chaos):

* ``sqlite``: the raw durable-commit floor (``raw_commit.py``), Perdure on SQLite at
  ``synchronous=full`` and ``normal`` (``perdure_workloads.py``, project venv), its write path
  layer by layer (``step_cost.py``), and DBOS Transact 3.4 on SQLite with its defaults and on
  WAL (``dbos_workloads.py``, ``bench/.venv-dbos`` made by ``setup_dbos.sh``; skipped with a
  note if it cannot be installed). Rounds are interleaved: each round runs every script once
  (``--repeat 1``) in turn, so a burst of other load on the box hits all engines alike; the
  per-round samples are then merged into ``bench/results-*.json`` (median/min/max/samples).
* ``pg``: the same workloads on Perdure and DBOS on one throwaway PostgreSQL 15 server
  (``_pg_server.py`` around ``tests/pgserver.py``, started once for every group that needs
  it), and the raw commit floor there, in 3 interleaved rounds.
* ``fanout``, ``signals``, ``timers``, ``failover``, ``memory``, ``claims``: see
  ``_groups.py`` and each script's docstring; SQLite and PostgreSQL each.
* ``chaos``: ``python -m chaos`` on both backends, its invariants table recorded.

Every Perdure measurement imports a copy of ``perdure/`` taken at the start of the run
(``_snapshot_run.py``): others edit the live tree meanwhile.

This file is stdlib only: the scripts run in their own interpreters.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # python -m bench
    from bench import _groups
except ImportError:  # python bench/__main__.py
    import _groups  # type: ignore[no-redef]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS_MD = BENCH / "RESULTS.md"
RUN_META = "results-run.json"
DBOS_PY = BENCH / ".venv-dbos" / "bin" / "python"

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



# ---------------------------------------------------------------------------
# Running the scripts
# ---------------------------------------------------------------------------


def project_python() -> str:
    """The interpreter that has ``perdure``: this one if it can import it, else ``.venv``."""
    try:
        import perdure  # noqa: F401

        return sys.executable
    except ImportError:
        venv = ROOT / ".venv" / "bin" / "python"
        if venv.exists():
            return str(venv)
        raise SystemExit("cannot find an interpreter with perdure installed "
                         "(run from the project venv, or create .venv)") from None


def run_script(cmd: list[str], log: Path) -> bool:
    """Run one benchmark subprocess; its stderr/stdout go to ``log``. True on success."""
    print(f"$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=False)
    dt = time.perf_counter() - t0
    print(f"  -> exit {proc.returncode} in {dt:.1f} s", flush=True)
    return proc.returncode == 0


def setup_dbos(log: Path) -> tuple[bool, str]:
    """Make sure bench/.venv-dbos has DBOS; (ok, note)."""
    if shutil.which("bash") is None:
        return False, "bash not found, cannot run setup_dbos.sh"
    ok = run_script(["bash", str(BENCH / "setup_dbos.sh")], log)
    if ok and DBOS_PY.exists():
        return True, ""
    return False, f"bench/setup_dbos.sh failed (see {log}); DBOS columns skipped"


def interp_info(python: str) -> dict[str, str]:
    """Python and SQLite versions of an interpreter."""
    code = ("import json,platform,sqlite3;print(json.dumps({'python':platform.python_version(),"
            "'sqlite':sqlite3.sqlite_version,'executable':__import__('sys').executable}))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        return {"python": "?", "sqlite": "?", "executable": python}


def package_version(python: str, name: str) -> str:
    code = f"import importlib.metadata as m;print(m.version({name!r}))"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# ---------------------------------------------------------------------------
# Merging per-round reports
# ---------------------------------------------------------------------------


def _stat(values: list[float], unit: str) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "samples": values}


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge single-round reports of one script into one report over all rounds."""
    base = json.loads(json.dumps(reports[0]))
    # The transaction traces are taken once per round, after a workload; background traffic
    # (the claim loop, DBOS's own status updates) can slip in. Keep the leanest trace.
    traced = [r for r in reports if r.get("txn_trace")]
    if traced:
        base["txn_trace"] = min(
            traced, key=lambda r: sum(t.get("write_transactions", 0)
                                      for t in r["txn_trace"].values()))["txn_trace"]
    merged: dict[str, Any] = {}
    for name, first in base["workloads"].items():
        samples = [x for r in reports if name in r["workloads"]
                   for x in r["workloads"][name]["samples"]]
        st = _stat(samples, first["unit"])
        for extra in ("p50_us", "p99_us"):
            if extra in first:
                st[extra] = statistics.median(r["workloads"][name][extra] for r in reports
                                              if name in r["workloads"])
        if "settings" in first:
            st["settings"] = first["settings"]
        merged[name] = st
    # marginal_step*: each round's sample is that round's own (seq5 - seq0) / steps, and the
    # headline is the median of these paired differences. (The scripts' own headline, the
    # difference of the medians, mixes rounds and swings widely when other jobs load the box.)
    base["workloads"] = merged
    base["repeat"] = sum(r.get("repeat", 1) for r in reports)
    if "wall_seconds" in base:
        base["wall_seconds"] = sum(r.get("wall_seconds", 0.0) for r in reports)
    base.setdefault("notes", []).append(
        f"Merged by `python -m bench` from {len(reports)} interleaved rounds (one process per "
        "round, each engine in turn); median/min/max are over all rounds.")
    return base


# ---------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------


def _w(report: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if report is None:
        return None
    return report["workloads"].get(name)


def _fmt(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(st: dict[str, Any] | None) -> str:
    """'median (min–max)' or '—'."""
    if st is None:
        return "—"
    if len(st.get("samples", [])) <= 1:
        return f"{_fmt(st['median'])}"
    return f"{_fmt(st['median'])} ({_fmt(st['min'])}–{_fmt(st['max'])})"


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None or not b["median"]:
        return "—"
    r = a["median"] / b["median"]
    return f"{r:.3g}"


def _ratio_val(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if a is None or b is None or not b["median"]:
        return None
    return float(a["median"] / b["median"])


def machine_info() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = "?"
    try:
        out = subprocess.run(["df", "-T", str(BENCH)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[-1].split()
        fs = f"{out[1]} ({out[0]})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": str(os.cpu_count()), "cpu": cpu, "fs": fs, "mem": mem,
            "kernel": platform.release()}


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "perdure"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
        dirty = [ln[3:] for ln in dirty if ln.strip()]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout?)"
    if not dirty:
        return f"`{head}` (perdure/ clean)"
    return f"`{head}` plus uncommitted changes in {', '.join(f'`{d}`' for d in dirty)}"


def code_snapshot() -> dict[str, str]:
    """sha1 of every source file under perdure/ (to notice edits made while the run goes on)."""
    import hashlib

    out: dict[str, str] = {}
    for f in sorted((ROOT / "perdure").rglob("*")):
        if f.is_file() and f.suffix in (".py", ".sql"):
            out[str(f.relative_to(ROOT))] = hashlib.sha1(f.read_bytes()).hexdigest()
    return out


def preserved_sections(text: str) -> dict[str, str]:
    """Bodies of the ``<!-- section: NAME -->`` blocks of an existing RESULTS.md."""
    out: dict[str, str] = {}
    for m in re.finditer(r"<!-- section: (\w+) -->\n(.*?)<!-- /section: \1 -->", text, re.S):
        out[m.group(1)] = m.group(2)
    return out


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
        a(f"| {label} | {cell(_w(pf, key))} | {cell(_w(pn, key))} | {cell(_w(db, key))} | "
          f"{cell(_w(dw, key))} | **{ratio(_w(pf, key), _w(db, key))}** | "
          f"{ratio(_w(pf, key), _w(dw, key))} | {ratio(_w(pn, key), _w(dw, key))} |")
    a("")
    a("Ratios are Perdure / DBOS of the medians: below 1 is better for costs and latencies, above "
      "1 is better for steps/s.")
    if _w(db, "marginal_step_handle") is not None:
        a("")
        a("DBOS through its handle API (`start_workflow_async` + `get_result()`, the same shape as "
          "Perdure's `start` + `result`):")
        a("")
        a("| metric | Perdure FULL | DBOS default, handle API | Perdure FULL / DBOS |")
        a("|---|---|---|---|")
        for label, key, hkey in rows[:3]:
            if hkey:
                a(f"| {label} | {cell(_w(pf, key))} | {cell(_w(db, hkey))} | "
                  f"{ratio(_w(pf, key), _w(db, hkey))} |")
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
        a(f"| WAL + FULL | {cell(rw.get('wal_full'))} | {cell(_w(pf, 'marginal_step'))} | "
          f"{ratio(_w(pf, 'marginal_step'), rw.get('wal_full'))} |")
        a(f"| WAL + NORMAL | {cell(rw.get('wal_normal'))} | {cell(_w(pn, 'marginal_step'))} | "
          f"{ratio(_w(pn, 'marginal_step'), rw.get('wal_normal'))} |")
        a(f"| DELETE + FULL (DBOS's setting) | {cell(rw.get('delete_full'))} | "
          f"DBOS: {cell(_w(db, 'marginal_step'))} | "
          f"DBOS: {ratio(_w(db, 'marginal_step'), rw.get('delete_full'))} |")
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
            a(f"| {label} | {cell(_w(lf, key))} | {cell(_w(ln, key))} |")
        a(f"| **Perdure marginal step** (from seq5 − seq0 above) | "
          f"{cell(_w(pf, 'marginal_step'))} | {cell(_w(pn, 'marginal_step'))} |")
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

    r1 = _ratio_val(_w(pf, "marginal_step"), _w(db, "marginal_step"))
    target("per-step cost ≤ 1/10 of DBOS on SQLite (Perdure FULL / DBOS default)", r1,
           r1 is not None and r1 <= 0.1, "{:.3f}")
    r1w = _ratio_val(_w(pf, "marginal_step"), _w(dw, "marginal_step"))
    target("… and against DBOS tuned to WAL (Perdure FULL / DBOS WAL)", r1w,
           r1w is not None and r1w <= 0.1, "{:.3f}")
    rw = raw["workloads"] if raw else {}
    r2 = _ratio_val(_w(pf, "marginal_step"), rw.get("wal_full"))
    target("per-step cost within 2× of the raw durable commit (Perdure FULL / raw WAL+FULL)", r2,
           r2 is not None and r2 <= 2, "{:.2f}×")
    r2n = _ratio_val(_w(pn, "marginal_step"), rw.get("wal_normal"))
    if r2n is not None:
        a(f"| (for information: Perdure NORMAL / raw WAL+NORMAL; not a target, the commit is "
          f"not durable) | {r2n:.2f}× | — |")
    r3 = _ratio_val(_w(pf, "conc5_steps_per_s"), _w(db, "conc5_steps_per_s"))
    target("concurrent throughput ≥ 15× DBOS (Perdure FULL / DBOS default conc5)", r3,
           r3 is not None and r3 >= 15, "{:.1f}×")
    r3w = _ratio_val(_w(pf, "conc5_steps_per_s"), _w(dw, "conc5_steps_per_s"))
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


def _load() -> str:
    try:
        la = os.getloadavg()
        return " / ".join(f"{x:.2f}" for x in la)
    except OSError:
        return "?"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", metavar="GROUPS",
                    help="comma-separated groups to measure: sqlite, pg, fanout, signals, "
                         "timers, failover, memory, claims, chaos (aliases: waits = "
                         "signals,timers; all = everything but chaos, the default). The other "
                         "groups' sections are re-rendered from their stored JSON.")
    ap.add_argument("--quick", action="store_true",
                    help="fewer rounds/repeats/samples everywhere (a smoke run)")
    ap.add_argument("--rounds", type=int,
                    help="interleaved rounds of the sqlite group (default 5, --quick 1)")
    ap.add_argument("--no-dbos", action="store_true", help="skip DBOS")
    ap.add_argument("--no-md", action="store_true", help="do not rewrite bench/RESULTS.md")
    ap.add_argument("--dir", type=Path, default=BENCH,
                    help="parent dir for temporary SQLite files (default: bench/)")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rewrite RESULTS.md from the stored JSON files")
    args = ap.parse_args(argv)
    if args.render_only:
        return render_only()
    groups = _groups.expand(args.only)
    rounds = args.rounds or (1 if args.quick else 5)
    t_start = time.perf_counter()
    load_start = _load()
    git_start = git_state()
    code_start = code_snapshot()

    py = project_python()
    skipped: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    log = work / "bench.log"
    print(f"groups: {', '.join(groups)}; logs and per-round JSON in {work}", flush=True)
    # Freeze the code under test: others edit perdure/ while we measure.
    src = work / "src"
    shutil.copytree(ROOT / "perdure", src / "perdure",
                    ignore=shutil.ignore_patterns("__pycache__"))
    frozen = [py, str(BENCH / "_snapshot_run.py"), str(src)]

    dbos_ok = False
    dbos_note = ""
    if args.no_dbos:
        dbos_note = "--no-dbos"
    elif {"sqlite", "pg", "signals"} & set(groups):
        dbos_ok, dbos_note = setup_dbos(log)
    if not dbos_ok and dbos_note:
        skipped.append(f"DBOS: {dbos_note}")

    meta_path = BENCH / RUN_META
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    reports: dict[str, dict[str, Any] | None]
    if "sqlite" in groups:
        reports = measure_sqlite(args, rounds, py, frozen, work, log, dbos_ok, skipped)
        ctx: dict[str, Any] = {
            "quick": args.quick,
            "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "wall": time.perf_counter() - t_start,
            "rounds": rounds,
            "git": git_state(),
            "git_start": git_start,
            "code_changed": [],
            "machine": machine_info(),
            "project_interp": interp_info(py),
            "dbos_interp": interp_info(str(DBOS_PY)) if dbos_ok else None,
            "perdure_version": package_version(py, "perdure"),
            "dbos_version": package_version(str(DBOS_PY), "dbos") if dbos_ok else None,
            "dbos_note": dbos_note,
            "load_start": load_start,
            "load_end": _load(),
            "skipped": [s for s in skipped if not s.startswith(("DBOS", "pg", "chaos"))],
        }
        ctx["groups"] = meta.get("groups", {})
        meta = ctx
    else:
        reports = stored_reports()

    pg_proc = None
    pg_info: dict[str, Any] = {}
    if _groups.NEEDS_PG & set(groups):
        pg_proc, pg_info = _groups.start_pg_server(py, log)
        if pg_proc is None:
            skipped.append(f"PostgreSQL: the throwaway server did not start (log: {log}); the "
                           "PostgreSQL halves are skipped")
    gctx = _groups.Ctx(py=py, frozen=frozen, dbos_py=str(DBOS_PY) if dbos_ok else None,
                       pg=pg_info or None, work=work, log=log, quick=args.quick, dir=args.dir,
                       run_script=run_script, merge=merge)
    try:
        for g in groups:
            if g == "sqlite":
                continue
            g_start, g_load, g_git = time.perf_counter(), _load(), git_state()
            print(f"== group {g}", flush=True)
            _groups.RUNNERS[g](gctx)
            meta.setdefault("groups", {})[g] = {
                "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                "wall": time.perf_counter() - g_start, "only": args.only or "all",
                "git_start": g_git, "load_start": g_load, "load_end": _load(),
                "quick": args.quick,
            }
            meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    finally:
        _groups.stop_pg_server(pg_proc)
    skipped += gctx.skipped
    code_end = code_snapshot()
    changed = sorted(k for k in set(code_start) | set(code_end)
                     if code_start.get(k) != code_end.get(k))
    if "sqlite" in groups:
        meta["code_changed"] = changed
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"all groups done in {(time.perf_counter() - t_start) / 60:.1f} min", flush=True)
    return finish(reports, meta, write_md=not args.no_md, work=work, skipped=skipped)


def measure_sqlite(args: argparse.Namespace, rounds: int, py: str, frozen: list[str],
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


def finish(reports: dict[str, dict[str, Any] | None], ctx: dict[str, Any], *, write_md: bool,
           work: Path | None, skipped: list[str]) -> int:
    """Print the summary, rewrite RESULTS.md, clean up."""
    text = render(reports, ctx) if ctx.get("machine") else "# Benchmark results\n"
    if write_md:
        old = preserved_sections(RESULTS_MD.read_text()) if RESULTS_MD.exists() else {}
        more = _groups.render_more(old, ctx.get("groups", {}))
        RESULTS_MD.write_text(text + "\n" + more)
        print(f"wrote {RESULTS_MD.relative_to(ROOT)}")
        glance = more.split("## Targets at a glance", 1)[-1].split("<!-- /section", 1)[0]
        print("\n## Targets at a glance" + glance)
    failed = [s for s in skipped if not s.startswith("DBOS:")]
    if failed:
        print("failed or skipped:\n  " + "\n  ".join(failed))
        print(f"kept {work} (something failed)")
        return 1
    if work is not None:
        shutil.rmtree(work)
    return 0


def render_only() -> int:
    """Rewrite RESULTS.md from the stored results-*.json and results-run.json (no measuring)."""
    meta = BENCH / RUN_META
    ctx = json.loads(meta.read_text()) if meta.exists() else {}
    return finish(stored_reports(), ctx, write_md=True, work=None, skipped=[])


if __name__ == "__main__":
    raise SystemExit(main())
