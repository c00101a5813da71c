# ruff: noqa: RUF001, RUF002
"""The workload groups of ``python -m bench`` beyond the SQLite comparison: running them and
rendering their sections of ``RESULTS.md`` (stdlib only, like ``__main__.py``).

Groups: ``pg`` (Perdure vs DBOS 3.4 on one PostgreSQL server, raw commit floor), ``fanout``,
``signals``, ``timers``, ``failover``, ``memory``, ``claims`` and ``chaos`` (the last one only
when asked for). Each writes ``bench/results-<group>-*.json`` and its context (date, code,
load) into ``results-run.json`` under ``groups``; each renders one ``<!-- section: NAME -->``
block from those files, so a group that did not run this time keeps its last results.
Hand-written analysis lives in ``<!-- section: NAME_notes -->`` blocks, which are kept as
they are and placed right after their section.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

ORDER = ["postgresql", "fanout", "signals", "timers", "failover", "memory", "claims", "chaos"]
GROUP_OF_SECTION = {"postgresql": "pg"}
ALIASES = {"waits": ["signals", "timers"], "postgresql": ["pg"], "all": [
    "sqlite", "pg", "fanout", "signals", "timers", "failover", "memory", "claims"]}
NEEDS_PG = {"pg", "fanout", "signals", "timers", "failover", "memory", "claims"}
TITLES = {
    "postgresql": "PostgreSQL backend (Perdure vs DBOS 3.4 on the same server, raw commit floor)",
    "fanout": "Fan-out (one workflow gathering 1,000 steps)",
    "signals": "Signals (send → the waiting workflow resumes)",
    "timers": "Durable timers (lateness of 10,000 timers due within one second)",
    "failover": "Failover (worker SIGKILLed mid-step → the other worker owns its runs)",
    "memory": "Memory (100,000 parked runs) and claim latency beside them",
    "claims": "Claim latency with 1,000,000 rows in the runs table",
    "chaos": "Chaos harness (last runs)",
}


@dataclass
class Ctx:
    """What a group needs to run its scripts."""

    py: str
    frozen: list[str]  # run a Perdure script against the frozen copy of perdure/
    dbos_py: str | None
    pg: dict[str, Any] | None  # {"url", "version", "settings"} of the throwaway server
    work: Path
    log: Path
    quick: bool
    dir: Path
    run_script: Callable[[list[str], Path], bool]
    merge: Callable[[list[dict[str, Any]]], dict[str, Any]]
    skipped: list[str] = field(default_factory=list)

    @property
    def pg_url(self) -> str | None:
        return self.pg["url"] if self.pg else None


def _run_json(ctx: Ctx, name: str, cmd: list[str]) -> dict[str, Any] | None:
    out = ctx.work / f"{name}.json"
    if ctx.run_script([*cmd, "--out", str(out)], ctx.log) and out.exists():
        return json.loads(out.read_text())
    ctx.skipped.append(f"{name} failed (log: {ctx.log})")
    return None


def _save(name: str, report: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> None:
    if report is None:
        return
    if extra:
        report = {**report, **extra}
    (BENCH / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote bench/{name}", flush=True)


def _pg_meta(ctx: Ctx) -> dict[str, Any]:
    return {"pg_server": {k: v for k, v in (ctx.pg or {}).items() if k != "url"}}


def _perdure(ctx: Ctx, script: str, *args: str) -> list[str]:
    return [*ctx.frozen, str(BENCH / script), *args, "--dir", str(ctx.dir)]


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def run_pg(ctx: Ctx) -> None:
    if ctx.pg_url is None:
        ctx.skipped.append("pg: no PostgreSQL server")
        return
    rounds = 1 if ctx.quick else 3
    wl = "seq0,seq5,conc5,start_first_step"
    plan: dict[str, list[str]] = {
        "pg_raw": [ctx.py, str(BENCH / "raw_commit.py"), "--db", ctx.pg_url, "--repeat", "1",
                   "-n", "1000" if ctx.quick else "2000"],
        "pg_perdure": _perdure(ctx, "perdure_workloads.py", "--db", ctx.pg_url, "--repeat", "1",
                               "--workloads", wl),
        "pg_layers": _perdure(ctx, "pg_step_cost.py", "--db", ctx.pg_url, "--repeat", "1",
                              "-n", "500" if ctx.quick else "1000"),
    }
    if ctx.dbos_py:
        plan["pg_dbos"] = [ctx.dbos_py, str(BENCH / "dbos_workloads.py"), "--db", ctx.pg_url,
                           "--repeat", "1", "--workloads", wl]
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in plan}
    for r in range(rounds):
        print(f"== pg round {r + 1}/{rounds}", flush=True)
        for name, cmd in plan.items():
            rep = _run_json(ctx, f"{name}-{r}", cmd)
            if rep is not None:
                per[name].append(rep)
    for name, reps in per.items():
        if reps:
            _save(f"results-{name.replace('_', '-')}.json", ctx.merge(reps), _pg_meta(ctx))


def run_fanout(ctx: Ctx) -> None:
    rep = "3" if ctx.quick else "5"
    _save("results-fanout-sqlite.json", _run_json(ctx, "fanout-sqlite", _perdure(
        ctx, "perdure_workloads.py", "--workloads", "fanout", "--repeat", rep)))
    if ctx.pg_url:
        _save("results-fanout-pg.json", _run_json(ctx, "fanout-pg", _perdure(
            ctx, "perdure_workloads.py", "--db", ctx.pg_url, "--workloads", "fanout",
            "--repeat", rep)), _pg_meta(ctx))


def run_signals(ctx: Ctx) -> None:
    rep = "1" if ctx.quick else "3"
    n = "100" if ctx.quick else "200"
    _save("results-signals-sqlite.json", _run_json(ctx, "signals-sqlite", _perdure(
        ctx, "signal_latency.py", "--repeat", rep, "-n", n)))
    if ctx.pg_url:
        _save("results-signals-pg.json", _run_json(ctx, "signals-pg", _perdure(
            ctx, "signal_latency.py", "--db", ctx.pg_url, "--repeat", rep, "-n", n)),
            _pg_meta(ctx))
    if ctx.dbos_py:
        drep = "1" if ctx.quick else "2"
        _save("results-signals-dbos-sqlite.json", _run_json(ctx, "signals-dbos-sqlite", [
            ctx.dbos_py, str(BENCH / "dbos_workloads.py"), "--db", "sqlite", "--workloads",
            "signal", "--repeat", "1", "--dir", str(ctx.dir)]))
        if ctx.pg_url:
            _save("results-signals-dbos-pg.json", _run_json(ctx, "signals-dbos-pg", [
                ctx.dbos_py, str(BENCH / "dbos_workloads.py"), "--db", ctx.pg_url,
                "--workloads", "signal", "--repeat", drep]), _pg_meta(ctx))


def run_timers(ctx: Ctx) -> None:
    rep = "1" if ctx.quick else "2"
    _save("results-timers-sqlite.json", _run_json(ctx, "timers-sqlite", _perdure(
        ctx, "timer_lateness.py", "--repeat", rep)))
    if ctx.pg_url:
        _save("results-timers-pg.json", _run_json(ctx, "timers-pg", _perdure(
            ctx, "timer_lateness.py", "--db", ctx.pg_url, "--repeat", rep, "--configs",
            "small,default,parked")), _pg_meta(ctx))


def run_failover(ctx: Ctx) -> None:
    rep = "3" if ctx.quick else "10"
    _save("results-failover-sqlite.json", _run_json(ctx, "failover-sqlite", _perdure(
        ctx, "failover.py", "--repeat", rep)))
    if ctx.pg_url:
        _save("results-failover-pg.json", _run_json(ctx, "failover-pg", _perdure(
            ctx, "failover.py", "--db", ctx.pg_url, "--repeat", rep)), _pg_meta(ctx))


def run_memory(ctx: Ctx) -> None:
    steps = "10000,30000" if ctx.quick else "10000,100000"
    _save("results-memory-sqlite.json", _run_json(ctx, "memory-sqlite", _perdure(
        ctx, "memory.py", "--steps", steps)))
    if ctx.pg_url:
        _save("results-memory-pg.json", _run_json(ctx, "memory-pg", _perdure(
            ctx, "memory.py", "--db", ctx.pg_url, "--steps", steps, "--held", "0")),
            _pg_meta(ctx))


def run_claims(ctx: Ctx) -> None:
    rows = "200000" if ctx.quick else "1000000"
    _save("results-claims-sqlite.json", _run_json(ctx, "claims-sqlite", _perdure(
        ctx, "claim_scale.py", "--rows", rows)))
    if ctx.pg_url:
        _save("results-claims-pg.json", _run_json(ctx, "claims-pg", _perdure(
            ctx, "claim_scale.py", "--db", ctx.pg_url, "--rows", rows)), _pg_meta(ctx))


def run_chaos(ctx: Ctx) -> None:
    """``python -m chaos`` on both backends (the live tree: its workers are ``perdure worker``
    processes), with the arguments of the record in RESULTS.md."""
    for backend, extra in (("sqlite", []), ("postgres", ["--expected-seconds", "40"])):
        out = ctx.work / f"chaos-{backend}.json"
        cmd = [ctx.py, "-m", "chaos", "--backend", backend, "--runs", "1000",
               "--kill-every", "2", *extra, "--json", str(out)]
        ok = ctx.run_script(cmd, ctx.log)
        if out.exists():
            rep = json.loads(out.read_text())
            rep["command"] = "python " + " ".join(cmd[1:-2])
            rep["exit_ok"] = ok
            _save(f"results-chaos-{backend}.json", rep)
        else:
            ctx.skipped.append(f"chaos {backend} failed (log: {ctx.log})")


RUNNERS: dict[str, Callable[[Ctx], None]] = {
    "pg": run_pg, "fanout": run_fanout, "signals": run_signals, "timers": run_timers,
    "failover": run_failover, "memory": run_memory, "claims": run_claims, "chaos": run_chaos,
}


def start_pg_server(py: str, log: Path) -> tuple[subprocess.Popen[str] | None, dict[str, Any]]:
    """Start ``_pg_server.py``; returns the process (close its stdin to stop it) and its info."""
    print("$ starting a throwaway PostgreSQL server (bench/_pg_server.py)", flush=True)
    with log.open("a") as fh:
        proc = subprocess.Popen([py, str(BENCH / "_pg_server.py")], cwd=ROOT,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=fh,
                                text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        info = json.loads(line)
    except json.JSONDecodeError:
        proc.wait(timeout=30)
        return None, {}
    print(f"  -> PostgreSQL {info.get('version')} at {info.get('url')}", flush=True)
    return proc, info


def stop_pg_server(proc: subprocess.Popen[str] | None) -> None:
    if proc is None:
        return
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=30)


# ---------------------------------------------------------------------------
# Rendering helpers
# ---------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any] | None:
    f = BENCH / name
    if not f.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(f.read_text())
        return data
    except json.JSONDecodeError:
        return None


def _fmt(x: float) -> str:
    if x != x:
        return "—"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def cell(st: dict[str, Any] | None, scale: float = 1.0) -> str:
    """'median (min–max)' or '—'."""
    if not st:
        return "—"
    med = st["median"] * scale
    if "min" not in st or st["min"] == st["max"]:
        return _fmt(med)
    return f"{_fmt(med)} ({_fmt(st['min'] * scale)}–{_fmt(st['max'] * scale)})"


def _w(rep: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if rep is None:
        return None
    got: dict[str, Any] | None = rep.get("workloads", {}).get(key)
    return got


def _med(rep: dict[str, Any] | None, key: str) -> float | None:
    st = _w(rep, key)
    return None if st is None else float(st["median"])


def _n(rep: dict[str, Any] | None, key: str) -> int:
    st = _w(rep, key)
    return len(st.get("samples", [])) if st else 0


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


@dataclass
class Target:
    section: str
    label: str
    measured: str
    ok: bool | None


def _when(group_ctx: dict[str, Any] | None) -> str:
    if not group_ctx:
        return ""
    return (f"Measured {group_ctx.get('date', '?')} by `python -m bench --only "
            f"{group_ctx.get('only', '?')}` ({group_ctx.get('wall', 0) / 60:.1f} min); code "
            f"{group_ctx.get('git_start', '?')} (frozen copy); load average at start → end "
            f"{group_ctx.get('load_start', '?')} → {group_ctx.get('load_end', '?')}.")


def _pg_line(rep: dict[str, Any] | None) -> str:
    s = (rep or {}).get("pg_server", {}).get("settings")
    if not s:
        return ""
    return (f"PostgreSQL {s.get('server_version', '?')} started by `tests/pgserver.py` on this "
            f"box (data directory on the same ext4 disk as the SQLite files): "
            f"fsync={s.get('fsync')}, synchronous_commit={s.get('synchronous_commit')}, "
            f"wal_sync_method={s.get('wal_sync_method')}, shared_buffers="
            f"{s.get('shared_buffers')}; connections over TCP on 127.0.0.1.")


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


def render_postgresql(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    pp, dp, rp, lp = (_load(f) for f in ("results-pg-perdure.json", "results-pg-dbos.json",
                                         "results-pg-raw.json", "results-pg-layers.json"))
    if pp is None and dp is None:
        return None
    sf = _load("results-perdure-sqlite-full.json")
    L: list[str] = [f"## {TITLES['postgresql']}", "", _when(gctx), "", _pg_line(pp or dp), ""]
    a = L.append
    a("**Method.** The SQLite workloads above, unchanged, on one throwaway PostgreSQL server: "
      "`perdure_workloads.py --db postgresql://…` (a fresh database per round, in-process "
      "`Engine`, asyncpg) and `dbos_workloads.py --db postgresql://…` (DBOS 3.4 with its "
      "defaults: a fresh system database per round, created by `DBOS.launch()`, psycopg), "
      f"interleaved over {_n(pp, 'seq0') or '?'} rounds; the raw floor is `raw_commit.py "
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
        pm, dm = _med(pp, key), _med(dp, key)
        if pm is not None and dm:
            r = pm / dm
        a(f"| {label} | {cell(_w(pp, key))} | {cell(_w(dp, key))} | "
          f"**{'—' if r is None else f'{r:.3g}'}** | {cell(_w(sf, key))} |")
    a("")
    if rp is not None:
        rw = rp["workloads"]
        a("Raw durable single-row commit on the same server (µs per commit, mean over each "
          "round's 2,000; p50/p99 per commit):")
        a("")
        a("| driver | µs / commit | p50 / p99 | Perdure marginal step ÷ this |")
        a("|---|---|---|---|")
        pm = _med(pp, "marginal_step")
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
            a(f"| {label} | {cell(_w(lp, key))} |")
        a(f"| **Perdure marginal step** (seq5 − seq0 above) | {cell(_w(pp, 'marginal_step'))} "
          "|")
        a("")
    pm, dm = _med(pp, "marginal_step"), _med(dp, "marginal_step")
    r = pm / dm if pm is not None and dm else None
    t = Target("postgresql", "PostgreSQL: per-step cost ≤ 1/8 of DBOS 3.4 on the same server",
               "—" if r is None else f"{r:.3f} ({_fmt(pm or 0)} vs {_fmt(dm or 0)} µs)",
               None if r is None else r <= 1 / 8)
    targets.append(t)
    a(f"**Target** per-step cost ≤ 1/8 of DBOS's (0.125): measured **{t.measured}** → "
      f"{verdict(t.ok)}.")
    a("")
    return "\n".join(L)


def render_fanout(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    fs, fp = _load("results-fanout-sqlite.json"), _load("results-fanout-pg.json")
    if fs is None and fp is None:
        return None
    a_list: list[str] = [f"## {TITLES['fanout']}", "", _when(gctx), "", _pg_line(fp), ""]
    a = a_list.append
    a("**Method.** `perdure_workloads.py --workloads fanout`: one workflow "
      "`await perdure.gather(*(s(i) for i in range(1000)))` of trivial async steps, timed from "
      "`engine.start` to `result()`, after 20 warm-up workflows and one uncounted fan-out of "
      "100; a fresh database and engine per repeat (in-process worker, defaults).")
    a("")
    a("| backend | steps/s ↑ | repeats | for comparison: conc5 steps/s (200 workflows × 5 "
      "steps) |")
    a("|---|---|---|---|")
    sf = _load("results-perdure-sqlite-full.json")
    pg = _load("results-pg-perdure.json")
    for label, rep, conc in (("SQLite, synchronous=FULL", fs, sf), ("PostgreSQL", fp, pg)):
        if rep is None:
            continue
        a(f"| {label} | {cell(_w(rep, 'fanout_steps_per_s'))} | "
          f"{_n(rep, 'fanout_steps_per_s')} | {cell(_w(conc, 'conc5_steps_per_s'))} |")
    a("")
    a("**Target:** none was set; recorded for reference.")
    a("")
    return "\n".join(a_list)


def render_signals(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    ss, sp = _load("results-signals-sqlite.json"), _load("results-signals-pg.json")
    ds, dp = _load("results-signals-dbos-sqlite.json"), _load("results-signals-dbos-pg.json")
    if ss is None and sp is None:
        return None
    L: list[str] = [f"## {TITLES['signals']}", "", _when(gctx), "", _pg_line(sp), ""]
    a = L.append
    n = (ss or sp or {}).get("n", "?")
    a("**Method** (`signal_latency.py`; a fresh database per repeat, SQLite at "
      "synchronous=FULL; the first 10 samples of each repeat are warm-up):")
    a("")
    a(f"* **one process**: an in-process `Engine` starts a run of `ping_loop`, which loops on "
      f"`await perdure.wait_for_signal(\"ping\")`; latency = `perf_counter()` just before "
      f"`await handle.signal(\"ping\", i)` → the workflow's first line after "
      f"`wait_for_signal` returns (a hook it calls). {n} samples per repeat, 5 ms apart.")
    pn = (ss or sp or {}).get("parked_n", 30)
    a(f"* **two processes**: a worker process drives the run; the bench process is a client "
      f"(`Engine(worker=False)`) that sends. After each signal the workflow runs a step whose "
      f"body takes `time.time()`; latency = that − `time.time()` just before the send (same "
      f"host clock). The run is waiting in memory (a signal wait lingers `park_after` = 5 s "
      f"before parking). {n} samples per repeat, 10–60 ms apart (random, so sends do not lock "
      f"in phase with SQLite's 50 ms check).")
    a("* **two processes, parked run**: the same, but the worker has `park_after=0.05`: the "
      "run has parked (a row, no coroutine) when the signal comes, so the latency includes "
      f"the claim and the replay. One fresh run per sample, {pn} per repeat, each signalled "
      "0.20–0.25 s after its start.")
    a("* **DBOS 3.4** (`dbos_workloads.py --workloads signal`): one process, a workflow looping "
      "on `await DBOS.recv_async(\"ping\")`, `await DBOS.send_async(wf_id, i, \"ping\")` from "
      "outside; 100 samples 5 ms apart on PostgreSQL (2 repeats), 20 samples 5–1005 ms apart "
      "on SQLite (1 repeat: DBOS polls for messages every second there).")
    a("")
    a("p50 and p99 in ms: median over repeats of each repeat's percentile (min–max over "
      "repeats).")
    a("")
    a("| case | SQLite p50 | SQLite p99 | PostgreSQL p50 | PostgreSQL p99 |")
    a("|---|---|---|---|---|")
    for label, m in (("Perdure, one process", "local"),
                     ("Perdure, two processes (run waiting in memory)", "remote"),
                     ("Perdure, two processes, parked run", "parked")):
        a(f"| {label} | {cell(_w(ss, m + '_p50'))} | {cell(_w(ss, m + '_p99'))} | "
          f"{cell(_w(sp, m + '_p50'))} | {cell(_w(sp, m + '_p99'))} |")
    a(f"| DBOS 3.4, one process | {cell(_w(ds, 'signal_p50'))} | {cell(_w(ds, 'signal_p99'))} "
      f"| {cell(_w(dp, 'signal_p50'))} | {cell(_w(dp, 'signal_p99'))} |")
    a("")
    checks = [
        ("signals, one process, SQLite FULL: p50 ≤ 1 ms", _med(ss, "local_p50"), 1.0),
        ("signals, one process, PostgreSQL: p50 ≤ 1 ms", _med(sp, "local_p50"), 1.0),
        ("signals, two processes, PostgreSQL: p50 ≤ 5 ms", _med(sp, "remote_p50"), 5.0),
    ]
    a("| target | measured p50 (ms) | verdict |")
    a("|---|---|---|")
    for label, v, lim in checks:
        t = Target("signals", label, "—" if v is None else f"{v:.2f} ms",
                   None if v is None else v <= lim)
        targets.append(t)
        a(f"| {label} | {t.measured} | {verdict(t.ok)} |")
    v = _med(ss, "remote_p50")
    a(f"| (expected, not a target) two processes on SQLite ≈ the 50 ms change check | "
      f"{'—' if v is None else f'{v:.1f} ms'} | — |")
    a("")
    return "\n".join(L)


def render_timers(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    ts, tp = _load("results-timers-sqlite.json"), _load("results-timers-pg.json")
    if ts is None and tp is None:
        return None
    L: list[str] = [f"## {TITLES['timers']}", "", _when(gctx), "", _pg_line(tp), ""]
    a = L.append
    a("**Method** (`timer_lateness.py`): a fresh database and one in-process `Engine`; N runs "
      "of `alarm(due_i)` are started at once (concurrent `engine.start`s, 500 at a time), "
      "`due_i = T0 + i/N`, so all N timers fall due within the same second, `T0` being 5 s "
      "(SQLite) or 10 s (PostgreSQL, slower to start 10,000 runs) after the first start; "
      "runs claimed more than `park_after` before their timer park instead of waiting in "
      "memory (the last column counts runs whose sleep was journaled just before `T0`). "
      "Each run does `await perdure.sleep_until(due)` and then a step whose body returns "
      "`time.time()`: lateness = that − `due_i`. Configurations: **small** = 100 runs, "
      "defaults; **default** = 10,000 runs, defaults (`concurrency=100`, `park_after=5`: a "
      "timer due within 5 s waits in memory and holds one of the 100 slots, so most runs are "
      "claimed only as slots free up); **wide** = 10,000 runs, `concurrency=10000` (all wait "
      "in memory); **parked** = 10,000 runs, `park_after=1` (all park as rows and are claimed "
      "back when due). Wake rate = runs woken per second between the first and the last "
      "wake: staying on time needs 10,000/s. Median over repeats (min–max); `wide` runs on "
      "SQLite only, to keep the whole benchmark under 15 minutes.")
    a("")
    a("| backend, config | p50 (ms) | p99 (ms) | max (ms) | first due (ms) | last woken (ms) | "
      "wake rate (runs/s) | N starts took (s) | runs sleeping at T0−0.2 s |")
    a("|---|---|---|---|---|---|---|---|---|")
    for bname, rep in (("SQLite FULL", ts), ("PostgreSQL", tp)):
        if rep is None:
            continue
        for c in ("small", "default", "wide", "parked"):
            if _w(rep, f"{c}_p50_ms") is None:
                continue
            runs = _w(rep, f"{c}_p50_ms").get("runs", "?")  # type: ignore[union-attr]
            a(f"| {bname}, {c} ({runs:,} runs) | {cell(_w(rep, f'{c}_p50_ms'))} | "
              f"{cell(_w(rep, f'{c}_p99_ms'))} | {cell(_w(rep, f'{c}_max_ms'))} | "
              f"{cell(_w(rep, f'{c}_first_due_ms'))} | {cell(_w(rep, f'{c}_last_woken_ms'))} | "
              f"{cell(_w(rep, f'{c}_drain_runs_per_s'))} | "
              f"{cell(_w(rep, f'{c}_start_seconds'))} | "
              f"{cell(_w(rep, f'{c}_sleeping_at_t0'))} |")
    a("")
    a("| target | measured p99 | verdict |")
    a("|---|---|---|")
    for bname, rep in (("SQLite FULL", ts), ("PostgreSQL", tp)):
        for c, what in (("default", "10,000 timers, defaults"), ("small", "100 timers")):
            v = _med(rep, f"{c}_p99_ms")
            t = Target("timers", f"timers p99 lateness ≤ 20 ms, {bname}, {what}",
                       "—" if v is None else f"{v:.1f} ms", None if v is None else v <= 20)
            if c == "default":
                targets.append(t)
            a(f"| {t.label} | {t.measured} | {verdict(t.ok)} |")
    a("")
    return "\n".join(L)


def render_failover(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    fs, fp = _load("results-failover-sqlite.json"), _load("results-failover-pg.json")
    if fs is None and fp is None:
        return None
    L: list[str] = [f"## {TITLES['failover']}", "", _when(gctx), "", _pg_line(fp), ""]
    a = L.append
    a("**Method** (`failover.py`): per repeat a fresh database; worker process A (engine "
      "defaults, `lease=10`) takes 100 runs whose one step sleeps an hour; once A owns all 100 "
      "with their steps executing, worker process B starts and idles; after a random 0.5–1 s "
      "(so the kill does not lock in phase with B's periodic checks) A gets SIGKILL and is "
      "reaped at once. The bench process polls the runs table's `owner` column every 2 ms: "
      "failover time = kill → B owns all 100 (and → B owns the first). Both workers on this "
      "host; SQLite: two processes on one file (B sees A's pid is gone); PostgreSQL: A's "
      "session advisory lock goes with its connection.")
    a("")
    a("| backend | kill → B owns all 100 (ms) | kill → B owns the first (ms) | repeats |")
    a("|---|---|---|---|")
    for bname, rep in (("SQLite FULL, 2 worker processes", fs),
                       ("PostgreSQL, 2 worker processes", fp)):
        if rep is None:
            continue
        a(f"| {bname} | {cell(_w(rep, 'failover_all'))} | {cell(_w(rep, 'failover_first'))} | "
          f"{_n(rep, 'failover_all')} |")
    a("")
    for bname, rep in (("SQLite", fs), ("PostgreSQL", fp)):
        st = _w(rep, "failover_all")
        ok = None if st is None else st["max"] <= 1000
        t = Target("failover", f"failover ≤ 1 s, {bname} (worst of the repeats)",
                   "—" if st is None else f"median {st['median']:.0f} ms, worst "
                   f"{st['max']:.0f} ms", ok)
        targets.append(t)
    a("**Target** ≤ 1 s: " + "; ".join(f"{t.label.split(', ')[1].split(' (')[0]} "
                                       f"{t.measured} → {verdict(t.ok)}"
                                       for t in targets if t.section == "failover") + ".")
    a("")
    return "\n".join(L)


def render_memory(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    ms, mp = _load("results-memory-sqlite.json"), _load("results-memory-pg.json")
    if ms is None and mp is None:
        return None
    L: list[str] = [f"## {TITLES['memory']}", "", _when(gctx), "", _pg_line(mp), ""]
    a = L.append
    a("**Method** (`memory.py`): one worker process (engine defaults) on a fresh database; "
      "the bench process is a client that starts runs of `sleeper` (`await perdure.sleep("
      "timedelta(days=1))`) in concurrent batches of 1,000 `engine.start`s while the worker "
      "claims them, journals each timer and parks each run (status `waiting`: a row, no "
      "coroutine). SQLite stays at synchronous=FULL (no shortcut was needed: concurrent starts "
      "are group-committed). At 0, 10,000 and 100,000 parked runs the worker reports from "
      "inside its own process: VmRSS and VmHWM (peak) from `/proc/self/status` (no forced GC), "
      "how many runs it holds in memory, start → first step of 50 new runs started in the "
      "worker process itself, and the time of 100 claim statements (`store.claim`, nothing "
      "due) and `next_wake` reads; on PostgreSQL once more after `VACUUM (ANALYZE)` of the "
      "runs table. For comparison, on SQLite: a worker with `park_after` of "
      "two days and `concurrency=10100`, so that 10,000 such sleeps are held in memory as "
      "coroutines, and 10,000 bare `asyncio.sleep` tasks added to the same process.")
    a("")
    for bname, rep in (("SQLite FULL", ms), ("PostgreSQL", mp)):
        if rep is None:
            continue
        summ = rep["summary"]
        a(f"**{bname}** ({rep.get('repeat', 1)} repeat(s); medians):")
        a("")
        a("| worker state | VmRSS (MiB) | VmHWM (MiB) | runs in memory | start → first step "
          "p50 / p99 (ms) | claim statement p50 / p99 (ms) | next_wake p50 (ms) |")
        a("|---|---|---|---|---|---|---|")
        for row in summ["rows"]:
            def f(k: str, fmt: str = "{:.2f}", row: dict[str, Any] = row) -> str:
                v = row.get(k)
                if v is None:
                    return "—"
                x = float(v["median"])
                return f"{x / 1024:.1f}" if k.endswith("_kb") else fmt.format(x)

            a(f"| {row['label']} | {f('rss_kb')} | {f('hwm_kb')} | {f('active', '{:.0f}')} | "
              f"{f('start_first_step_p50_ms')} / {f('start_first_step_p99_ms')} | "
              f"{f('claim_p50_ms', '{:.3f}')} / {f('claim_p99_ms', '{:.3f}')} | "
              f"{f('next_wake_p50_ms', '{:.3f}')} |")
        a("")
        fills = summ.get("fill") or []
        if fills:
            parts = [f"{x['to'] - x['from']:,} runs started in {x['start_seconds']:.1f} s, all "
                     f"parked {x['parked_seconds']:.1f} s after the first start"
                     for x in fills[0]]
            a("Filling: " + "; ".join(parts) + f". Database size at the end: "
              f"{(summ.get('db_bytes') or [0])[0] / 2**20:.0f} MiB.")
            a("")
        rows = summ["rows"]
        zero = next((r for r in rows if r["parked"] == 0 and "rss_kb" in r
                     and "probe" in r["label"]), None)
        ten = next((r for r in rows if r["parked"] == 10_000), None)
        hundred = next((r for r in rows if r["parked"] == 100_000
                        and "VACUUM" not in r["label"]), None)
        held = summ.get("held")
        if zero and ten:
            d10 = (ten["rss_kb"]["median"] - zero["rss_kb"]["median"]) / 1024
            line = f"10,000 parked runs: VmRSS {d10:+.1f} MiB over the idle worker"
            if hundred:
                d100 = (hundred["rss_kb"]["median"] - zero["rss_kb"]["median"]) / 1024
                line += f"; 100,000: {d100:+.1f} MiB"
            if held:
                dh = (held["held_rss_kb"] - held["base_rss_kb"]) / 1024
                dt = (held["plus_tasks_rss_kb"] - held["held_rss_kb"]) / 1024
                line += (f". The same 10,000 sleeps held in memory instead: {dh:+.1f} MiB "
                         f"(and 10,000 bare asyncio tasks on top: {dt:+.1f} MiB)")
            a(line + ".")
            a("")
            ok = None
            if held:
                ok = d10 < (held["held_rss_kb"] - held["base_rss_kb"]) / 1024 / 5
                targets.append(Target(
                    "memory", f"memory, {bname}: 10,000 parked runs cost rows, not coroutines "
                    "(RSS growth < 1/5 of holding them in memory)",
                    f"{d10:+.1f} MiB parked vs {dh:+.1f} MiB held", ok))
            if hundred:
                targets.append(Target(
                    "memory", f"memory, {bname}: 100,000 parked runs, worker RSS (no target; "
                    "claim latency unchanged?)", f"{d100:+.1f} MiB; start→first step p50 "
                    f"{hundred['start_first_step_p50_ms']['median']:.2f} ms vs "
                    f"{zero['start_first_step_p50_ms']['median']:.2f} ms at 0", None))
    a("**Targets:** none numeric; the claim is that parked runs cost rows, not coroutines: "
      "see the verdicts in the summary table at the top of this part.")
    a("")
    return "\n".join(L)


def render_claims(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    cs, cp = _load("results-claims-sqlite.json"), _load("results-claims-pg.json")
    if cs is None and cp is None:
        return None
    L: list[str] = [f"## {TITLES['claims']}", "", _when(gctx), "", _pg_line(cp), ""]
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
            a(f"| {bname} | {label} | {cell(_w(rep, f'{ph}_sfs_p50'))} | "
              f"{cell(_w(rep, f'{ph}_sfs_p99'))} | {cell(_w(rep, f'{ph}_claim_p50'))} | "
              f"{cell(_w(rep, f'{ph}_claim_p99'))} | {cell(_w(rep, f'{ph}_wake_p50'))} |")
    a("")
    for bname, rep in (("SQLite", cs), ("PostgreSQL", cp)):
        if rep is None:
            continue
        a(f"{bname}: {rep.get('rows') or 0:,} rows loaded in {rep.get('fill_seconds') or 0:.1f} "
          f"s. Claim query plan: " + "; ".join(f"`{p.strip()}`" for p in rep.get("plan") or []))
        a("")
        e, f = _med(rep, "empty_claim_p50"), _med(rep, "full_claim_p50")
        es, fs_ = _med(rep, "empty_sfs_p50"), _med(rep, "full_sfs_p50")
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


def render_chaos(gctx: dict[str, Any] | None, targets: list[Target]) -> str | None:
    reps = [(b, _load(f"results-chaos-{b}.json")) for b in ("sqlite", "postgres")]
    if all(r is None for _, r in reps):
        return None
    L: list[str] = [f"## {TITLES['chaos']}", ""]
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


def sqlite_targets(targets: list[Target]) -> None:
    """The SQLite comparison's targets (also in its own table above), for the summary."""
    pf, db, dw, raw = (_load(f) for f in (
        "results-perdure-sqlite-full.json", "results-dbos-sqlite.json",
        "results-dbos-sqlite-wal.json", "results-raw-sqlite.json"))
    p_step, d_step, w_step = (_med(r, "marginal_step") for r in (pf, db, dw))
    raw_full = _med(raw, "wal_full")
    p_c, d_c = _med(pf, "conc5_steps_per_s"), _med(db, "conc5_steps_per_s")

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


RENDERERS: dict[str, Callable[[dict[str, Any] | None, list[Target]], str | None]] = {
    "postgresql": render_postgresql, "fanout": render_fanout, "signals": render_signals,
    "timers": render_timers, "failover": render_failover, "memory": render_memory,
    "claims": render_claims, "chaos": render_chaos,
}
NOT_MEASURED = "_Not yet measured._"


def render_more(old: dict[str, str], groups_ctx: dict[str, dict[str, Any]]) -> str:
    """Everything after the SQLite comparison: other preserved sections, a targets summary,
    then one generated section (+ its kept ``_notes``) per group."""
    L: list[str] = []
    known = set(ORDER) | {f"{n}_notes" for n in ORDER} | {"targets"}
    for name, body in old.items():
        if name not in known:
            L.append(f"<!-- section: {name} -->\n{body}<!-- /section: {name} -->")
            L.append("")
    targets: list[Target] = []
    sqlite_targets(targets)
    bodies: dict[str, str] = {}
    for name in ORDER:
        gname = GROUP_OF_SECTION.get(name, name)
        body = RENDERERS[name](groups_ctx.get(gname), targets)
        if body is None:
            prev = old.get(name)
            body = prev if prev and prev.strip() and NOT_MEASURED not in prev else (
                f"## {TITLES[name]}\n\n{NOT_MEASURED}\n")
        bodies[name] = body.rstrip("\n") + "\n\n"
    L += ["# More workloads", "",
          "Generated by `python -m bench` from `bench/results-<group>-*.json` (`--only GROUP,...` "
          "re-measures some groups and re-renders all from the stored files). The sections "
          "marked `NAME_notes` (in the HTML comments) are hand-written analysis, kept as they "
          "are.",
          ""]
    tl = ["## Targets at a glance", "", "| target | measured | verdict |", "|---|---|---|"]
    for t in targets:
        tl.append(f"| {t.label} | {t.measured} | "
                  f"{verdict(t.ok) if t.ok is not None else '(information)'} |")
    L.append("<!-- section: targets -->\n" + "\n".join(tl) + "\n\n<!-- /section: targets -->")
    L.append("")
    for name in ORDER:
        L.append(f"<!-- section: {name} -->\n{bodies[name]}<!-- /section: {name} -->")
        L.append("")
        notes = old.get(f"{name}_notes")
        if notes is not None:
            L.append(f"<!-- section: {name}_notes -->\n{notes}<!-- /section: {name}_notes -->")
            L.append("")
    return "\n".join(L)


def expand(only: str | None) -> list[str]:
    """The groups named by ``--only`` (aliases expanded), in run order."""
    names = ALIASES["all"] if not only else [x.strip() for x in only.split(",") if x.strip()]
    out: list[str] = []
    for n in names:
        for g in ALIASES.get(n, [n]):
            if g not in out:
                out.append(g)
    unknown = [g for g in out if g != "sqlite" and g not in RUNNERS]
    if unknown:
        raise SystemExit(f"unknown group(s) {unknown}; choose from sqlite, "
                         f"{', '.join(RUNNERS)} (aliases: {', '.join(ALIASES)})")
    order = ["sqlite", *RUNNERS]
    return sorted(out, key=order.index)

