# ruff: noqa: RUF001
"""Group ``long_flat`` (only when asked for by name: ~5 min at FULL): one run with a
100,000-entry journal, per-step cost at step 100 against step 100,000, the replay after a
SIGKILL and the worker's memory (``long_flat.py``; issue 14, target 5).
"""

from __future__ import annotations

from typing import Any

from ._shared import Ctx, Target, fmt, load_json, perdure_cmd, run_json, save, verdict, when

NAME = "long_flat"
SECTION = "long_flat"
TITLE = "Long runs stay flat (one run, 100,000 journal entries, no continue-as-new)"
NEEDS_PG = False
IN_ALL = False


def run(ctx: Ctx) -> None:
    save("results-long-flat-sqlite.json", run_json(ctx, "long-flat-sqlite", perdure_cmd(
        ctx, "long_flat.py", "--steps", "20000" if ctx.quick else "100000")))


def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    rep = load_json("results-long-flat-sqlite.json")
    if rep is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx) or (
        f"Measured {rep.get('date', '?')} by `long_flat.py` ({rep.get('wall_s', 0) / 60:.1f} "
        f"min), code {rep.get('code', '?')}; load average at start → end "
        f"{' / '.join(f'{x:.2f}' for x in rep.get('load_start', []))} → "
        f"{' / '.join(f'{x:.2f}' for x in rep.get('load_end', []))}."), ""]
    a = L.append
    a("**Method** (`long_flat.py`): worker A (its own process, `concurrency=1`) drives one run "
      f"of {rep['steps']:,} trivial steps on a fresh SQLite file "
      f"(synchronous={rep.get('synchronous', 'full').upper()}), each step printing "
      "`perf_counter` as it starts; per-step cost = the interval between consecutive starts "
      "(the journal write, its commit, the next call). When the run waits in memory for a "
      "signal, A is SIGKILLed, the signal sent, worker B started: replay = B's engine open → "
      "the step after the wait (reap A, claim, load and replay the journal, consume the "
      "signal). Memory: VmRSS of A holding the run at the end, of B just opened and holding "
      "the replayed run. One run.")
    a("")
    a("| | value |")
    a("|---|---|")
    a(f"| per step, steps 1–1,000 (median, ms) | {fmt(rep['first_1000_ms'])} |")
    a(f"| per step, the last 1,000 steps (median, ms) | {fmt(rep['last_1000_ms'])} |")
    a(f"| ratio last / first | {rep['ratio_last_first']:.2f} |")
    a("| per step, median of each tenth of the run (ms) | "
      + ", ".join(fmt(x) for x in rep["tenths_ms"]) + " |")
    a(f"| replay after SIGKILL (s) | {rep['replay_s']:.2f} |")
    a(f"| worker A holding the run, VmRSS (MiB) | {rep['a_rss_kb_holding_100k'] / 1024:.0f} |")
    a(f"| worker B just opened → holding the replayed run, VmRSS (MiB) | "
      f"{rep['b_rss_kb_open'] / 1024:.0f} → {rep['b_rss_kb_holding'] / 1024:.0f} (peak "
      f"{rep['b_hwm_kb'] / 1024:.0f}) |")
    a("")
    r = rep["ratio_last_first"]
    targets.append(Target("long_flat", "long runs: per-step cost at step 100,000 within 1.2× "
                          "of step 100", f"{r:.2f}×", r <= 1.2))
    targets.append(Target("long_flat", "long runs: replay of a 100,000-entry journal after "
                          "SIGKILL ≤ 2 s", f"{rep['replay_s']:.2f} s", rep["replay_s"] <= 2))
    a(f"**Targets:** step 100,000 within 1.2× of step 100: {r:.2f}× → "
      f"{verdict(r <= 1.2)}; replay ≤ 2 s: {rep['replay_s']:.2f} s → "
      f"{verdict(rep['replay_s'] <= 2)}; memory stated above.")
    a("")
    return "\n".join(L)
