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
  ``groups/<name>.py`` and each script's docstring; SQLite and PostgreSQL each.
* ``chaos``: ``python -m chaos`` on both backends, its invariants table recorded.

Every Perdure measurement imports a copy of ``perdure/`` taken at the start of the run
(``_snapshot_run.py``): others edit the live tree meanwhile.

This file parses the arguments and drives the groups of ``bench/groups/`` (one module per group,
shared helpers in ``groups/_shared.py``). Stdlib only: the scripts run in their own
interpreters.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # python bench/__main__.py: make ``bench`` importable as under -m
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import groups
from bench.groups import sqlite
from bench.groups._shared import (
    BENCH,
    DBOS_PY,
    ROOT,
    Ctx,
    code_snapshot,
    git_state,
    interp_info,
    load_average,
    machine_info,
    package_version,
    preserved_sections,
    project_python,
    setup_dbos,
    start_pg_server,
    stop_pg_server,
)

RESULTS_MD = BENCH / "RESULTS.md"
RUN_META = "results-run.json"


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
    selected = groups.expand(args.only)
    rounds = args.rounds or (1 if args.quick else 5)
    t_start = time.perf_counter()
    load_start = load_average()
    git_start = git_state()
    code_start = code_snapshot()

    py = project_python()
    skipped: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    log = work / "bench.log"
    print(f"groups: {', '.join(selected)}; logs and per-round JSON in {work}", flush=True)
    # Freeze the code under test: others edit perdure/ while we measure.
    src = work / "src"
    shutil.copytree(ROOT / "perdure", src / "perdure",
                    ignore=shutil.ignore_patterns("__pycache__"))
    frozen = [py, str(BENCH / "_snapshot_run.py"), str(src)]

    dbos_ok = False
    dbos_note = ""
    if args.no_dbos:
        dbos_note = "--no-dbos"
    elif {"sqlite", "pg", "signals"} & set(selected):
        dbos_ok, dbos_note = setup_dbos(log)
    if not dbos_ok and dbos_note:
        skipped.append(f"DBOS: {dbos_note}")

    meta_path = BENCH / RUN_META
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    reports: dict[str, dict[str, Any] | None]
    if "sqlite" in selected:
        reports = sqlite.measure(args, rounds, py, frozen, work, log, dbos_ok, skipped)
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
            "load_end": load_average(),
            "skipped": [s for s in skipped if not s.startswith(("DBOS", "pg", "chaos"))],
        }
        ctx["groups"] = meta.get("groups", {})
        meta = ctx
    else:
        reports = sqlite.stored_reports()

    pg_proc = None
    pg_info: dict[str, Any] = {}
    if groups.NEEDS_PG & set(selected):
        pg_proc, pg_info = start_pg_server(py, log)
        if pg_proc is None:
            skipped.append(f"PostgreSQL: the throwaway server did not start (log: {log}); the "
                           "PostgreSQL halves are skipped")
    gctx = Ctx(py=py, frozen=frozen, dbos_py=str(DBOS_PY) if dbos_ok else None,
                       pg=pg_info or None, work=work, log=log, quick=args.quick, dir=args.dir)
    try:
        for g in selected:
            if g == "sqlite":
                continue
            g_start, g_load, g_git = time.perf_counter(), load_average(), git_state()
            print(f"== group {g}", flush=True)
            groups.RUNNERS[g](gctx)
            meta.setdefault("groups", {})[g] = {
                "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                "wall": time.perf_counter() - g_start, "only": args.only or "all",
                "git_start": g_git, "load_start": g_load, "load_end": load_average(),
                "quick": args.quick,
            }
            meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    finally:
        stop_pg_server(pg_proc)
    skipped += gctx.skipped
    code_end = code_snapshot()
    changed = sorted(k for k in set(code_start) | set(code_end)
                     if code_start.get(k) != code_end.get(k))
    if "sqlite" in selected:
        meta["code_changed"] = changed
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"all groups done in {(time.perf_counter() - t_start) / 60:.1f} min", flush=True)
    return finish(reports, meta, write_md=not args.no_md, work=work, skipped=skipped)


def finish(reports: dict[str, dict[str, Any] | None], ctx: dict[str, Any], *, write_md: bool,
           work: Path | None, skipped: list[str]) -> int:
    """Print the summary, rewrite RESULTS.md, clean up."""
    text = sqlite.render(reports, ctx) if ctx.get("machine") else "# Benchmark results\n"
    if write_md:
        old = preserved_sections(RESULTS_MD.read_text()) if RESULTS_MD.exists() else {}
        more = groups.render_more(old, ctx.get("groups", {}))
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
    return finish(sqlite.stored_reports(), ctx, write_md=True, work=None, skipped=[])


if __name__ == "__main__":
    raise SystemExit(main())
