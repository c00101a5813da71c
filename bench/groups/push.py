# ruff: noqa: RUF001
"""Group ``push``: another process's start, signal or cancel → the worker acts on it, on one
SQLite file, with push (Unix datagram sockets) and with the poll only (``push_latency.py``;
issue 14, target 3).
"""

from __future__ import annotations

from typing import Any

from ._shared import Ctx, Target, cell, load_json, med, perdure_cmd, run_json, save, w, when

NAME = "push"
SECTION = "push"
TITLE = "Push on SQLite across processes (start / signal / cancel → the worker acts)"
NEEDS_PG = False
IN_ALL = True

MODES = (("start", "start → first step"), ("signal", "signal → the waiting run resumes"),
         ("cancel", "cancel → the waiting run's `except Cancelled`"))


def run(ctx: Ctx) -> None:
    save("results-push-sqlite.json", run_json(ctx, "push-sqlite", perdure_cmd(
        ctx, "push_latency.py", "--repeat", "1" if ctx.quick else "3",
        "-n", "60" if ctx.quick else "200")))


def render(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    rep = load_json("results-push-sqlite.json")
    if rep is None:
        return None
    L: list[str] = [f"## {TITLE}", "", when(gctx), ""]
    a = L.append
    a("**Method** (`push_latency.py`): a worker subprocess (`_agent.py`, engine defaults, "
      "`poll_interval` 50 ms) and the bench process as a client (`Engine(worker=False)`), as a "
      "web server next to a `perdure worker`, on a fresh SQLite file (synchronous=FULL) per mode "
      "and variant. *push*: as shipped; *poll*: the client's push patched out, so the worker "
      "finds the commit on its `data_version` poll (as before). Three clocks: **woken** = the "
      "client's push (after its commit) → the worker's waker runs (stamped by the agent); "
      "**call → act** = just before the client's call → the worker's step body runs (includes "
      "the client's durable commit and the worker's own: claim, or consuming the signal); "
      "**after the call** = the call returned → the step runs. 200 samples 10–60 ms apart per "
      "mode, variant and round, 10 warm-up; rounds interleaved; p50/p99 per round, median "
      "(min–max) over rounds (ms).")
    a("")
    a("| workload | variant | woken p50 | woken p99 | call → act p50 | call → act p99 | "
      "after the call p50 | after the call p99 |")
    a("|---|---|---|---|---|---|---|---|")
    for mode, label in MODES:
        for variant in ("push", "poll"):
            k = f"{mode}_{variant}"
            if w(rep, f"{k}_p50") is None:
                continue
            a(f"| {label} | {variant} | {cell(w(rep, f'{k}_wake_p50'))} | "
              f"{cell(w(rep, f'{k}_wake_p99'))} | {cell(w(rep, f'{k}_p50'))} | "
              f"{cell(w(rep, f'{k}_p99'))} | {cell(w(rep, f'{k}_after_call_p50'))} | "
              f"{cell(w(rep, f'{k}_after_call_p99'))} |")
    a("")
    for mode, label in MODES:
        p50, p99 = med(rep, f"{mode}_push_wake_p50"), med(rep, f"{mode}_push_wake_p99")
        if p50 is None or p99 is None:
            continue
        targets.append(Target("push", f"push on SQLite: {label}, the worker notices within "
                              "p50 ≤ 2 ms, p99 ≤ 10 ms", f"woken p50 {p50:.2f} ms, p99 "
                              f"{p99:.1f} ms", p50 <= 2 and p99 <= 10))
    a("**Target** (noticed within p50 ≤ 2 ms, p99 ≤ 10 ms): read on the *woken* columns; the "
      "verdicts are in the summary at the top of this part.")
    a("")
    return "\n".join(L)
