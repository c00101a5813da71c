# ruff: noqa: RUF001
"""Group ``restate``: Perdure (SQLite, synchronous=FULL) and Restate (its own server, default
configuration, ``bench/setup_restate.sh``) side by side on the workloads that map, in
interleaved rounds (``perdure_workloads.py``, ``signal_latency.py``, ``restate_workloads.py``;
issue 14, target 7).
"""

from __future__ import annotations

from typing import Any

from ._shared import (
    BENCH,
    Ctx,
    Target,
    cell,
    load_json,
    med,
    merge,
    perdure_cmd,
    run_json,
    run_script,
    save,
    verdict,
    w,
    when,
)

NAME = "restate"
SECTION = "restate"
TITLE = "Restate side by side (Perdure on SQLite vs Restate's own server)"
NEEDS_PG = False
IN_ALL = True

RESTATE_PY = BENCH / ".venv-restate" / "bin" / "python"
FILES = {"perdure": "results-restate-perdure.json", "signals": "results-restate-signals.json",
         "restate": "results-restate.json"}


def run(ctx: Ctx) -> None:
    ok = run_script(["bash", str(BENCH / "setup_restate.sh")], ctx.log)
    if not ok or not RESTATE_PY.exists():
        ctx.skipped.append(f"restate: bench/setup_restate.sh failed (log: {ctx.log})")
        return
    rounds = 1 if ctx.quick else 4
    plan = {
        "perdure": perdure_cmd(ctx, "perdure_workloads.py", "--repeat", "1", "--workloads",
                               "seq0,seq5,conc5,start_first_step"),
        "signals": perdure_cmd(ctx, "signal_latency.py", "--repeat", "1", "--modes",
                               "local,remote", "-n", "100"),
        "restate": [str(RESTATE_PY), str(BENCH / "restate_workloads.py"), "--repeat", "1",
                    "--dir", str(ctx.dir)],
    }
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in plan}
    for r in range(rounds):
        print(f"== restate round {r + 1}/{rounds}", flush=True)
        for name, cmd in plan.items():
            rep = run_json(ctx, f"restate-{name}-{r}", cmd)
            if rep is not None:
                per[name].append(rep)
    for name, reps in per.items():
        if reps:
            save(FILES[name], merge(reps))


ROWS = [
    ("marginal cost per step (µs) ↓", "marginal_step", "perdure"),
    ("seq0: per workflow, 0 steps (ms) ↓", "seq0_per_workflow", "perdure"),
    ("seq5: per workflow, 5 steps (ms) ↓", "seq5_per_workflow", "perdure"),
    ("conc5: 200 five-step workflows at once, steps/s ↑", "conc5_steps_per_s", "perdure"),
    ("start → first step, median (ms) ↓", "start_first_step", "perdure"),
    ("start → first step, p99 (ms) ↓", "start_first_step_p99", "perdure"),
]


def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    pr, sg, rs = (load_json(f) for f in FILES.values())
    if rs is None and pr is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), ""]
    a = L.append
    a(f"Restate {(rs or {}).get('version', '?')} (`@restatedev/restate-server` from npm, the "
      "binary its platform package ships), Python SDK `restate-sdk` "
      f"{(rs or {}).get('sdk_version', '?')}, in `bench/.venv-restate` (made by "
      "`bench/setup_restate.sh`; never the project's venv). Default server configuration: "
      "replicated loglet on the node's own log-server, RocksDB WAL with fsync, 24 partitions.")
    a("")
    a("**Method.** Rounds interleave Perdure's and Restate's scripts (one repeat each per "
      "round). Perdure: `perdure_workloads.py` (one in-process `Engine` on a fresh SQLite file, "
      "synchronous=FULL) and `signal_latency.py` (*local*: one process; *remote*: a client "
      "process signals a worker process, pushed since target 3). Restate: "
      "`restate_workloads.py`, a fresh `restate-server` and a fresh service process (the "
      "SDK's ASGI app under hypercorn) per round, the bench as an HTTP client of the ingress: "
      "every call crosses three processes. Same workloads: 500 sequential 0/5-step workflows "
      "(steps `return i + 1`; on Restate the two alternate in blocks of 100, as its per-step "
      "cost is the difference of two ~50 ms figures), 200 five-step workflows at once, "
      "start → first line of the first step (200 samples), an external event resolving a "
      "waiting run (Perdure: `signal` → the run's next line; Restate: resolving the "
      "workflow's durable promise through its shared handler → the run's next line; 100 "
      "samples). Median over rounds (min–max).")
    a("")
    a("| metric | Perdure, SQLite FULL | Restate | Perdure / Restate |")
    a("|---|---|---|---|")
    for label, key, _ in ROWS:
        p, r = med(pr, key), med(rs, key)
        ratio = "—" if p is None or not r else f"{p / r:.3g}"
        a(f"| {label} | {cell(w(pr, key))} | {cell(w(rs, key))} | {ratio} |")
    for label, pkey in (("event → the waiting run resumes, p50 (ms) ↓ — Perdure local",
                         "local_p50"),
                        ("… p50 — Perdure remote (client and worker processes)", "remote_p50"),
                        ("… p99 — Perdure local", "local_p99"),
                        ("… p99 — Perdure remote", "remote_p99")):
        rkey = "signal_p50" if pkey.endswith("p50") else "signal_p99"
        p, r = med(sg, pkey), med(rs, rkey)
        ratio = "—" if p is None or not r else f"{p / r:.3g}"
        a(f"| {label} | {cell(w(sg, pkey))} | {cell(w(rs, rkey))} | {ratio} |")
    a("")
    ps, rsm = w(pr, "marginal_step"), w(rs, "marginal_step")
    if ps and rsm and len(ps["samples"]) == len(rsm["samples"]):
        a("Marginal cost per step, round by round (µs, Perdure vs Restate): " + "; ".join(
            f"{x:,.0f} vs {y:,.0f}" for x, y in zip(ps["samples"], rsm["samples"],
                                                     strict=True))
          + ". Each is the difference of two sequential batches' times, so a burst of other "
          "load during one batch moves it far (even below zero).")
        a("")
    p, r = med(pr, "marginal_step"), med(rs, "marginal_step")
    t1 = Target("restate", "Restate: per-step cost ≤ 1/3 of Restate's (Perdure SQLite FULL)",
                "—" if p is None or not r else f"{p / r:.3f} ({p:.0f} vs {r:.0f} µs)",
                None if p is None or not r else p / r <= 1 / 3)
    p, r = med(sg, "remote_p50"), med(rs, "signal_p50")
    t2 = Target("restate", "Restate: signal → resume p50 ≤ Restate's (Perdure across "
                "processes on SQLite)", "—" if p is None or not r else
                f"{p:.2f} vs {r:.2f} ms", None if p is None or not r else p <= r)
    targets += [t1, t2]
    a(f"**Targets:** per-step cost ≤ 1/3 of Restate's: **{t1.measured}** → {verdict(t1.ok)}; "
      f"signal → resume p50 ≤ Restate's: **{t2.measured}** → {verdict(t2.ok)}.")
    a("")
    return "\n".join(L)
