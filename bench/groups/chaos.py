"""Group ``chaos``: ``python -m chaos`` on both backends, its invariants table recorded (only
when asked for by name: not part of ``all``).
"""

from __future__ import annotations

import json
from typing import Any

from ._shared import Ctx, Target, load_json, run_script, save

NAME = "chaos"
SECTION = "chaos"
TITLE = "Chaos harness (last runs)"
NEEDS_PG = False
IN_ALL = False


def run(ctx: Ctx) -> None:
    """``python -m chaos`` on both backends (the live tree: its workers are ``perdure worker``
    processes), with the arguments of the record in RESULTS.md."""
    for backend, extra in (("sqlite", []), ("postgres", ["--expected-seconds", "40"])):
        out = ctx.work / f"chaos-{backend}.json"
        cmd = [ctx.py, "-m", "chaos", "--backend", backend, "--runs", "1000",
               "--kill-every", "2", *extra, "--json", str(out)]
        ok = run_script(cmd, ctx.log)
        if out.exists():
            rep = json.loads(out.read_text())
            rep["command"] = "python " + " ".join(cmd[1:-2])
            rep["exit_ok"] = ok
            save(f"results-chaos-{backend}.json", rep)
        else:
            ctx.skipped.append(f"chaos {backend} failed (log: {ctx.log})")


def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    reps = [(b, load_json(f"results-chaos-{b}.json")) for b in ("sqlite", "postgres")]
    if all(r is None for _, r in reps):
        return None
    L: list[str] = [f"## {TITLE}", ""]
    a = L.append
    if gctx:
        a(f"Run {gctx.get('date', '?')} by `python -m bench --only {gctx.get('only', '?')}` "
          f"({gctx.get('wall', 0) / 60:.1f} min), on the live tree at "
          f"{gctx.get('git_start', '?')} (its workers are `perdure worker` processes, so not "
          "the frozen copy).")
        a("")
    for b, rep in reps:
        if rep is None:
            continue
        a(f"`{rep.get('command', f'python -m chaos --backend {b}')}`: {rep['runs']} runs, "
          f"{rep['workers']} workers, {rep['kills']} SIGKILLs, {rep['db_restarts']} database "
          f"restarts, {rep['seconds']:.1f} s.")
        a("")
        a("| invariant | holds | detail |")
        a("|---|---|---|")
        for inv in rep["invariants"]:
            a(f"| {inv['name']} | {'yes' if inv['holds'] else '**NO**'} | {inv['detail']} |")
        a("")
        targets.append(Target("chaos", f"chaos, {b}: every invariant holds",
                              f"{sum(i['holds'] for i in rep['invariants'])}/"
                              f"{len(rep['invariants'])}",
                              all(i["holds"] for i in rep["invariants"])))
    return "\n".join(L)
