"""Timers by the ten thousand, before and after: 10,000 timers due within one second and
100,000 due within ten seconds, on SQLite and PostgreSQL, for two code versions side by side.

    python -m bench.timers_scale [--base REV] [--rounds 1] [--pg URL] [--cases 10k,100k]
                                 [--versions before,after] [--backends sqlite,postgres]

Each measurement is ``bench/timer_lateness.py`` (configuration ``default``: the engine's
defaults, ``concurrency=100``, ``park_after=5``) run by ``bench/_snapshot_run.py`` against a
frozen copy of ``perdure/`` taken from git: ``--base`` (default: the commit this branch started
from) and ``HEAD`` (plus the working tree's uncommitted changes, if any, are *not* included:
commit first). Rounds interleave the versions (base, head, base, head ...) so both see the
same machine load; the load average is recorded before and after each measurement.

Writes ``bench/results-timers-scale.json`` and prints a Markdown table for ``RESULTS.md``.
PostgreSQL: ``--pg`` an admin URL, else a throwaway server is started by ``_pg_server.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = ROOT / ".venv" / "bin" / "python"

#: (name, timers, spread seconds, lead seconds on SQLite, lead on PostgreSQL). The leads are
#: long so that every run has been started and has reached its timer before the first is due,
#: on this shared 2-core machine too (starting 10,000 runs took 8-34 s under a load of 10-13):
#: what is measured is the firing, not the starts.
CASES = [("10k in 1 s", 10_000, 1.0, 30.0, 50.0),
         ("100k in 10 s", 100_000, 10.0, 120.0, 300.0)]


def snapshot(rev: str, into: Path) -> str:
    """``perdure/`` at ``rev`` under ``into``; the commit's short hash."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "perdure"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], check=True,
                          capture_output=True, text=True).stdout.strip()


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(snap: Path, db: str, n: int, spread: float, lead: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [str(PY), str(BENCH / "_snapshot_run.py"), str(snap),
           str(BENCH / "timer_lateness.py"), "--db", db, "--configs", "default",
           "--runs", str(n), "--spread", str(spread), "--lead", str(lead), "--repeat", "1",
           "--out", str(out)]
    before = loadavg()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    after = loadavg()
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "load": f"{before} → {after}"}
    data = json.loads(out.read_text())
    out.unlink()
    w = data["workloads"]
    return {k.removeprefix("default_"): v["median"] for k, v in w.items()} | {
        "load": f"{before} → {after}"}


def start_pg() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([str(PY), str(BENCH / "_pg_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, json.loads(line)["url"]


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| case | backend | code | p50 (ms) | p99 (ms) | max (ms) | wake rate (runs/s) "
            "| starts took (s) | sleeping at T0-0.2 s | load avg before → after |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["m"]
        if "error" in m:
            rows.append(f"| {r['case']} | {r['backend']} | {r['code']} | failed: "
                        f"{m['error'].splitlines()[-1][:120]} | | | | | | {m['load']} |")
            continue
        rows.append(f"| {r['case']} | {r['backend']} | {r['code']} | {m['p50_ms']:,.1f} "
                    f"| {m['p99_ms']:,.1f} | {m['max_ms']:,.1f} | {m['drain_runs_per_s']:,.0f} "
                    f"| {m['start_seconds']:.1f} | {m['sleeping_at_t0']:,.0f} | {m['load']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="7c991f5", help="the code version to compare against")
    ap.add_argument("--head", default="HEAD")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--pg", help="a PostgreSQL admin URL (default: start a throwaway server)")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--cases", default="10k,100k", help="10k and/or 100k")
    ap.add_argument("--versions", default="before,after",
                    help="before and/or after (e.g. only after for the long 100k case)")
    ap.add_argument("--out", type=Path, default=BENCH / "results-timers-scale.json")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="perdure-timers-scale-"))
    codes = {}
    for label, rev in (("before", args.base), ("after", args.head)):
        if label not in args.versions.split(","):
            continue
        codes[label] = (tmp / label, snapshot(rev, tmp / label))
    server = None
    pg = args.pg
    backends = args.backends.split(",")
    if "postgres" in backends and pg is None:
        server, pg = start_pg()
    wanted = [c for c in CASES if c[0].split()[0] in args.cases.split(",")]
    results: list[dict[str, Any]] = []
    started = time.time()
    try:
        for rnd in range(args.rounds):
            for case, n, spread, lead_sqlite, lead_pg in wanted:
                for backend in backends:
                    db = "sqlite" if backend == "sqlite" else str(pg)
                    lead = lead_sqlite if backend == "sqlite" else lead_pg
                    for label, (snap, code) in codes.items():
                        m = measure(snap, db, n, spread, lead)
                        results.append({"round": rnd, "case": case, "backend": backend,
                                        "code": f"{label} ({code})", "m": m})
                        print(f"[{case} {backend} {label}] " + json.dumps(m), file=sys.stderr,
                              flush=True)
    finally:
        if server is not None and server.stdin is not None:
            server.stdin.close()
            server.wait(timeout=30)
    args.out.write_text(json.dumps({"started": time.strftime(
        "%Y-%m-%d %H:%M UTC", time.gmtime(started)), "minutes": (time.time() - started) / 60,
        "cpus": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
