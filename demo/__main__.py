"""``python -m demo``: kill a worker mid-flight and watch every order finish anyway.

What it does, on embedded SQLite, in a few seconds:

1. wipes ``demo-data/`` and starts a worker process:
   ``python -m perdure worker demo.orders:engine --db sqlite:///demo-data/perdure.db``;
2. a client (``Engine(..., worker=False)``) starts 24 order-fulfilment runs;
3. once about a third of the side effects have happened, it SIGKILLs the worker: no clean-up,
   no goodbye; some runs were mid-step, some had not started;
4. it starts a second worker, which sees that the first one's process is gone, takes over its
   runs at once (no lease to wait out), replays their journals and carries on;
5. it waits for every run and checks, from the journal and from the external ledger of side
   effects (``demo/ledger.py``), that

   * every run finished (completed, or failed and compensated when its order could not ship),
   * the journal holds each step of each run once (exactly-once), and
   * every side effect that executed more than once (at-least-once: the worker died after the
     effect, before journaling its result) did so with the same idempotency key.

It exits with 0 if all of that holds, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo import ledger
from demo.orders import (
    UNDELIVERABLE,
    Fulfilment,
    Order,
    charge_payment,
    create_shipment,
    fulfil_order,
    make_orders,
    reserve_inventory,
    send_confirmation,
)
from perdure import (
    Engine,
    JournalEntry,
    PerdureError,
    RunInfo,
    Step,
    WorkflowFailed,
    WorkflowHandle,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path("demo-data")  # relative to ROOT; gitignored
DB_URL = f"sqlite:///{DATA_DIR}/perdure.db"
N_ORDERS = 24
CONCURRENCY = 8  # runs a worker drives at once: a third of the batch, so some wait their turn
KILL_AT = 0.35  # SIGKILL the first worker once this share of all side effects has happened

# What the workflow calls, per run: each step at most once, each compensation at most once.
# A journal with more entries for a name than this would mean a step was journaled twice.
STEPS: Sequence[Step[..., Any]] = (reserve_inventory, charge_payment, create_shipment,
                                      send_confirmation)
MAX_CALLS: Counter[tuple[str, str]] = Counter(
    {("step", s.name): 1 for s in STEPS}
    | {("compensation", s.name): 1 for s in STEPS if s.compensate is not None})
# The ledger's name for the side effect of each journaled operation.
EFFECT_OF: dict[tuple[str, str], str] = (
    {("step", s.name): s.name for s in STEPS}
    | {("compensation", s.name): s.compensate.__name__ for s in STEPS
       if s.compensate is not None})

_t0 = time.monotonic()


def say(message: str = "") -> None:
    """Print with the time since the demo started."""
    print(f"[{time.monotonic() - _t0:5.2f}s] {message}" if message else "", flush=True)


class DemoError(Exception):
    """The demo could not run (as opposed to an invariant that does not hold)."""


# -- the two workers ---------------------------------------------------------------------------


async def start_worker(n: int) -> asyncio.subprocess.Process:
    """Start ``perdure worker`` in a new process and wait until it is claiming runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "perdure", "worker", "demo.orders:engine",
        "--db", DB_URL, "--concurrency", str(CONCURRENCY),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        # The demo tells its own story; a worker's run events (INFO) would drown it.
        env={**os.environ, "PERDURE_LOG": os.environ.get("PERDURE_LOG", "WARNING")})
    assert proc.stdout is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 30)  # "perdure worker ... driving"
    except TimeoutError:
        proc.kill()
        raise DemoError(f"worker {n} did not start within 30 s") from None
    if not ready:
        raise DemoError(f"worker {n} exited at start-up with code {await proc.wait()}")
    say(f"worker {n} is up (pid {proc.pid}): "
        f"perdure worker demo.orders:engine --concurrency {CONCURRENCY}")
    return proc


async def stop_worker(proc: asyncio.subprocess.Process) -> None:
    """Graceful stop: SIGTERM makes a worker drain (finish or hand back its runs)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.communicate(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# -- checking the invariants -------------------------------------------------------------------


def is_journaled(effect: ledger.Effect, journal: dict[int, JournalEntry]) -> bool:
    """Whether the journal records, as completed, the operation that executed ``effect``."""
    entry = journal.get(effect.seq)
    return (entry is not None and entry.status == "completed"
            and EFFECT_OF.get((entry.kind, entry.name)) == effect.step)


@dataclass
class RunReport:
    """Everything the demo found out about one run."""

    order: Order
    info: RunInfo
    at_kill: str
    journal: list[JournalEntry]
    effects: list[ledger.Effect]
    problems: list[str] = field(default_factory=list)  # broken invariants, any kind
    journal_problems: list[str] = field(default_factory=list)  # the journal's, in particular
    repeated: dict[str, list[ledger.Effect]] = field(default_factory=dict)

    @property
    def expected_status(self) -> str:
        return "failed" if self.order.address == UNDELIVERABLE else "completed"

    @property
    def retries(self) -> int:
        return sum(max(e.attempts - 1, 0) for e in self.journal)


def check_run(report: RunReport) -> None:
    """Fill in ``report.problems`` (broken invariants) and ``report.repeated`` (at-least-once)."""
    status = report.info.status.value
    if status not in ("completed", "failed"):
        report.problems.append(f"not finished: {status}")
    elif status != report.expected_status:
        report.problems.append(f"{status}, expected {report.expected_status}")

    # Exactly-once journal: each (run, seq) once, and semantically no step more often than
    # the workflow calls it (a replay that re-journaled a step would show up here).
    seqs = [e.seq for e in report.journal]
    if len(seqs) != len(set(seqs)):
        report.journal_problems.append("a sequence number is journaled twice")
    for (kind, name), n in Counter((e.kind, e.name) for e in report.journal).items():
        if n > MAX_CALLS[(kind, name)]:
            report.journal_problems.append(f"{kind} {name} journaled {n}x")
    for e in report.journal:
        if e.status not in ("completed", "failed"):
            report.journal_problems.append(f"{e.kind} {e.name} left {e.status}")
    if status == "failed":  # the saga: every completed step with an undo was undone
        undone = {e.name for e in report.journal
                  if e.kind == "compensation" and e.status == "completed"}
        for e in report.journal:
            if e.kind == "step" and e.status == "completed" \
                    and ("compensation", e.name) in MAX_CALLS and e.name not in undone:
                report.problems.append(f"{e.name} was not compensated")

    # Side effects against the journal: every journaled operation happened, and everything
    # that happened is journaled (a repeat is fine as long as it is the *same* operation).
    journal = {e.seq: e for e in report.journal}
    for e in report.journal:
        wanted = EFFECT_OF.get((e.kind, e.name))
        if e.status == "completed" and wanted is not None and not any(
                x.seq == e.seq and x.step == wanted for x in report.effects):
            report.problems.append(f"{e.name} journaled but its side effect never happened")
    by_key: defaultdict[str, list[ledger.Effect]] = defaultdict(list)
    for x in report.effects:
        if not is_journaled(x, journal):
            report.problems.append(f"side effect {x.step} ({x.idempotency_key}) not journaled")
        by_key[x.idempotency_key].append(x)
    report.repeated = {key: xs for key, xs in by_key.items() if len(xs) > 1}
    report.problems += report.journal_problems


# -- presentation ------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in lines)


def describe(report: RunReport) -> list[str]:
    steps = sum(e.kind == "step" for e in report.journal)
    undos = sum(e.kind == "compensation" for e in report.journal)
    journal = f"{steps} steps" + (f" + {undos} undo" if undos else "")
    repeats = sum(len(xs) - 1 for xs in report.repeated.values())
    effects = f"{len(report.effects)}" + (f" ({repeats} repeated)" if repeats else "")
    status = report.info.status.value
    if status == "failed" and not report.problems:
        status = "failed, compensated"
    if report.problems:
        verdict = "FAIL: " + "; ".join(report.problems)
    elif repeats:
        verdict = "ok (repeat had same key)"
    else:
        verdict = "ok"
    return [report.info.id, status, report.at_kill, journal, str(report.retries or "-"),
            effects, verdict]


def counts(statuses: Counter[str]) -> str:
    order = ["completed", "failed", "running", "pending", "waiting", "blocked", "cancelled"]
    return ", ".join(f"{statuses[s]} {s}" for s in order if statuses[s])


# -- the demo ----------------------------------------------------------------------------------


async def main() -> int:
    os.chdir(ROOT)  # the engine URL and the ledger path are relative to the repository root
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir()
    ledger.create()
    orders = make_orders(N_ORDERS)
    bad = sum(o.address == UNDELIVERABLE for o in orders)
    # Every order's steps each do one side effect; a failed order skips shipping and
    # confirmation but does a refund and a release instead: four either way.
    expected_effects = 4 * N_ORDERS

    print("Perdure demo: order fulfilment on embedded SQLite, with a worker killed mid-flight")
    print(f"  database {DATA_DIR}/perdure.db, side-effect ledger {ledger.LEDGER_PATH}")
    print(f"  {N_ORDERS} orders; {bad} cannot ship (their saga compensates); "
          "SlowBank cards time out once (retried)")
    print()

    workers: list[asyncio.subprocess.Process] = []
    try:
        workers.append(await start_worker(1))
        async with Engine(DB_URL, workflows=[fulfil_order], worker=False) as client:
            # Start the runs. The id makes starting idempotent: starting order-001 again
            # (say, after a client crash) returns the same run instead of a second one.
            handles: list[WorkflowHandle[Fulfilment]] = [
                await client.start(fulfil_order, order, id=order.id) for order in orders]
            say(f"client started {len(handles)} runs: {handles[0].id} ... {handles[-1].id}")

            # Let the first worker get well into the batch, then kill it without warning.
            deadline = time.monotonic() + 15
            while ledger.count() < expected_effects * KILL_AT:
                if workers[0].returncode is not None or time.monotonic() > deadline:
                    raise DemoError("the first worker made no progress")
                await asyncio.sleep(0.005)
            workers[0].kill()  # SIGKILL
            await workers[0].wait()
            killed_at = time.monotonic()

            # What was in flight: the runs' statuses, and side effects that happened but whose
            # step result never reached the journal (the next worker will redo those steps).
            runs = {r.id: r for r in await client.list_runs(limit=10 * N_ORDERS)}
            at_kill = {rid: r.status.value for rid, r in runs.items()}
            journals = {rid: {e.seq: e for e in await client.journal(rid)} for rid in runs}
            done_effects = ledger.effects()
            unjournaled = [x for x in done_effects if not is_journaled(x, journals[x.run_id])]
            say(f"SIGKILL worker 1 (pid {workers[0].pid}) mid-flight. At that instant:")
            print(f"          runs:   {counts(Counter(at_kill.values()))}")
            print(f"          ledger: {len(done_effects)} side effects executed, "
                  f"{len(unjournaled)} of them not yet journaled")
            for x in unjournaled:
                print(f"                  - {x.run_id} {x.step} (key {x.idempotency_key})")
            if unjournaled:
                print("          (they happened, but the worker died before journaling their "
                      "results:\n          the next worker will run those steps again)")
            if all(s in ("completed", "failed") for s in at_kill.values()):
                print("          (every run had already finished: nothing was in flight)")

            # A new worker: it sees that worker 1's process is gone and takes its runs over.
            workers.append(await start_worker(2))
            orphans = sum(s == "running" for s in at_kill.values())
            print(f"          it sees worker 1's process is gone and takes over its {orphans} "
                  "running runs at once\n          (no lease to wait out), replaying their "
                  "journals; then it claims the pending ones")
            finished: list[str] = []

            async def settle(handle: WorkflowHandle[Fulfilment]) -> None:
                try:
                    await handle.result(timeout=30)
                except WorkflowFailed:
                    pass  # a failed (and compensated) run is finished too
                except (PerdureError, TimeoutError):
                    return  # blocked, or still going: check_run reports it
                finished.append(handle.id)

            await asyncio.gather(*(settle(h) for h in handles))
            say(f"{len(finished)}/{len(handles)} runs finished, "
                f"{time.monotonic() - killed_at:.2f} s after the kill")
            await stop_worker(workers[1])

            # Check every run against its journal and the ledger.
            effects_by_run: defaultdict[str, list[ledger.Effect]] = defaultdict(list)
            for x in ledger.effects():
                effects_by_run[x.run_id].append(x)
            reports: list[RunReport] = []
            for order in orders:
                report = RunReport(order, await client.status(order.id), at_kill[order.id],
                                   await client.journal(order.id), effects_by_run[order.id])
                check_run(report)
                reports.append(report)

        # One run up close: a compensated one, as `perdure runs show` prints it.
        shown = next((r for r in reports if r.info.status.value == "failed" and r.retries),
                     reports[0])
        print()
        print(f"One run up close: python -m perdure runs show {shown.info.id} --db {DB_URL}")
        print()
        show = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "perdure", "runs", "show", shown.info.id, "--db", DB_URL,
            stdin=asyncio.subprocess.DEVNULL)
        await show.wait()
    finally:
        for proc in workers:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    return summarize(reports, unjournaled, workers[0].pid)


def summarize(reports: list[RunReport], unjournaled: list[ledger.Effect],
              killed_pid: int) -> int:
    """Print the per-run table and the verdict; the demo's exit code."""
    print()
    print(table([describe(r) for r in reports],
                ["RUN", "STATUS", "AT KILL", "JOURNAL", "RETRIES", "SIDE EFFECTS", "VERDICT"]))
    print()

    n = len(reports)
    done = [r for r in reports if r.info.status.value in ("completed", "failed")]
    completed = sum(r.info.status.value == "completed" for r in reports)
    journal_ok = not any(r.journal_problems for r in reports)
    entries = sum(len(r.journal) for r in reports)
    executions = sum(len(r.effects) for r in reports)
    keys = sum(len({x.idempotency_key for x in r.effects}) for r in reports)
    repeated = [(r, xs) for r in reports for xs in r.repeated.values()]
    predicted = {x.idempotency_key for x in unjournaled}
    failed_checks = [(r.info.id, p) for r in reports for p in r.problems]

    print(f"runs finished   {len(done)}/{n}: {completed} completed, {len(done) - completed} "
          "failed and compensated (undeliverable address)")
    if journal_ok:
        print(f"journal         {entries} entries, each (run, seq) once; no step of any run "
              "journaled more often\n                than the workflow calls it: exactly-once")
    else:
        print(f"journal         {entries} entries: BROKEN (see the table)")
    print(f"side effects    {executions} executions of {keys} distinct operations "
          "(one idempotency key each)")
    if repeated:
        times = "twice" if all(len(xs) == 2 for _, xs in repeated) else "more than once"
        print(f"                {len(repeated)} ran {times}: steps are at-least-once, and worker 1 "
              "died after doing\n                them but before journaling their results:")
        for r, xs in repeated:
            by = " and ".join(f"pid {x.pid}" + (" (killed)" if x.pid == killed_pid else "")
                              for x in xs)
            note = "" if xs[0].idempotency_key in predicted else "  (not predicted at the kill!)"
            print(f"                  {r.info.id}  {xs[0].step:<18} key {xs[0].idempotency_key}"
                  f"  by {by}{note}")
        print("                each repeat carried the same idempotency key as the first "
              "execution, so a\n                service that deduplicates by key (as payment "
              "APIs and mailers do) did it once")
    else:
        print("                none ran twice this time (the kill fell between steps); "
              "run the demo again")
    print()
    if failed_checks:
        print(f"INVARIANTS BROKEN ({len(failed_checks)}):")
        for run_id, problem in failed_checks:
            print(f"  {run_id}: {problem}")
        return 1
    print("All invariants hold: every run finished, each step journaled exactly once, "
          "every repeat\nidempotent by key.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        sys.exit(1)
