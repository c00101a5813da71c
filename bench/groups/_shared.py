# ruff: noqa: RUF001, RUF002
"""Shared by ``python -m bench`` and its groups (stdlib only): running a benchmark script and
collecting its JSON, the throwaway PostgreSQL server, merging per-round reports, the machine and
code state recorded with each result, and the formatting helpers every section uses.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
DBOS_PY = BENCH / ".venv-dbos" / "bin" / "python"


def project_python() -> str:
    """The interpreter that has ``perdure`` and its extras: the project's ``.venv`` if there is
    one (``python3 -m bench`` from the repository root imports ``perdure`` from the working
    directory with any interpreter, one without psycopg or asyncpg among them), else this one
    if it can import ``perdure``."""
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    try:
        import perdure  # noqa: F401

        return sys.executable
    except ImportError:
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


def load_average() -> str:
    try:
        la = os.getloadavg()
        return " / ".join(f"{x:.2f}" for x in la)
    except OSError:
        return "?"


# ---------------------------------------------------------------------------
# Groups: context, scripts, results
# ---------------------------------------------------------------------------


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
    skipped: list[str] = field(default_factory=list)

    @property
    def pg_url(self) -> str | None:
        return self.pg["url"] if self.pg else None


def run_json(ctx: Ctx, name: str, cmd: list[str]) -> dict[str, Any] | None:
    out = ctx.work / f"{name}.json"
    if run_script([*cmd, "--out", str(out)], ctx.log) and out.exists():
        return json.loads(out.read_text())
    ctx.skipped.append(f"{name} failed (log: {ctx.log})")
    return None


def save(name: str, report: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> None:
    if report is None:
        return
    if extra:
        report = {**report, **extra}
    (BENCH / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote bench/{name}", flush=True)


def pg_meta(ctx: Ctx) -> dict[str, Any]:
    return {"pg_server": {k: v for k, v in (ctx.pg or {}).items() if k != "url"}}


def perdure_cmd(ctx: Ctx, script: str, *args: str) -> list[str]:
    return [*ctx.frozen, str(BENCH / script), *args, "--dir", str(ctx.dir)]


def run_on_both(ctx: Ctx, name: str, script: str, *args: str,
                pg_args: tuple[str, ...] = ()) -> None:
    """The Perdure ``script`` with ``args`` on SQLite, then, with a server, on PostgreSQL
    (``--db URL``, ``args`` and ``pg_args``): ``results-NAME-sqlite.json`` and
    ``results-NAME-pg.json``, the way most groups measure."""
    save(f"results-{name}-sqlite.json", run_json(ctx, f"{name}-sqlite", perdure_cmd(
        ctx, script, *args)))
    if ctx.pg_url:
        save(f"results-{name}-pg.json", run_json(ctx, f"{name}-pg", perdure_cmd(
            ctx, script, "--db", ctx.pg_url, *args, *pg_args)), pg_meta(ctx))


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
# Rendering
# ---------------------------------------------------------------------------


def load_json(name: str) -> dict[str, Any] | None:
    f = BENCH / name
    if not f.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(f.read_text())
        return data
    except json.JSONDecodeError:
        return None


def fmt(x: float) -> str:
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
        return fmt(med)
    return f"{fmt(med)} ({fmt(st['min'] * scale)}–{fmt(st['max'] * scale)})"


def w(rep: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if rep is None:
        return None
    got: dict[str, Any] | None = rep.get("workloads", {}).get(key)
    return got


def med(rep: dict[str, Any] | None, key: str) -> float | None:
    st = w(rep, key)
    return None if st is None else float(st["median"])


def n_samples(rep: dict[str, Any] | None, key: str) -> int:
    st = w(rep, key)
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


def when(group_ctx: dict[str, Any] | None) -> str:
    if not group_ctx:
        return ""
    return (f"Measured {group_ctx.get('date', '?')} by `python -m bench --only "
            f"{group_ctx.get('only', '?')}` ({group_ctx.get('wall', 0) / 60:.1f} min); code "
            f"{group_ctx.get('git_start', '?')} (frozen copy); load average at start → end "
            f"{group_ctx.get('load_start', '?')} → {group_ctx.get('load_end', '?')}.")


def pg_line(rep: dict[str, Any] | None) -> str:
    s = (rep or {}).get("pg_server", {}).get("settings")
    if not s:
        return ""
    return (f"PostgreSQL {s.get('server_version', '?')} started by `tests/pgserver.py` on this "
            f"box (data directory on the same ext4 disk as the SQLite files): "
            f"fsync={s.get('fsync')}, synchronous_commit={s.get('synchronous_commit')}, "
            f"wal_sync_method={s.get('wal_sync_method')}, shared_buffers="
            f"{s.get('shared_buffers')}; connections over TCP on 127.0.0.1.")
