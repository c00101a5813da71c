"""Real worker processes for the crash tests, and the means to watch and compare them.

A :class:`Cluster` starts ``python -m perdure worker tests.crash.app:WORKFLOWS`` processes on one
SQLite file, reads the events their steps write to a FIFO (so the test knows *by state* when a
step hangs), kills them with SIGKILL, and always reaps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perdure import Engine, JournalEntry, RunStatus, WorkflowFailed
from tests.crash.app import EVENTS, LEDGER, WORKFLOWS

__all__ = ["Cluster", "Events", "Outcome", "Worker", "executions", "journal_shape", "ledger",
           "reference", "settle_all"]

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.crash.app"
Event = dict[str, Any]


class Events:
    """The reading end of the FIFO the worker processes report to."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        # A writer of our own keeps the FIFO open, so it never reads as end-of-file between
        # two writers.
        self._keep = os.open(path, os.O_WRONLY)
        self._buf = b""
        self.seen: list[Event] = []

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        self.seen += [json.loads(line) for line in lines if line]

    async def wait(self, check: Callable[[list[Event]], bool], *, timeout: float,
                   what: str, describe: Callable[[], str] = str) -> list[Event]:
        """Wait until ``check(all events so far)`` holds; woken by the FIFO, not by polling."""
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self._read, readable.set)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    readable.clear()
                    self._drain()
                    if check(self.seen):
                        return self.seen
                    await readable.wait()
        except TimeoutError:
            raise TimeoutError(f"no {what} within {timeout} s; events: {self.seen}\n"
                               f"{describe()}") from None
        finally:
            loop.remove_reader(self._read)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep)


@dataclass
class Worker:
    """One worker process."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def ready(self, timeout: float = 15.0) -> str:
        """Wait for the worker's start-up line (printed once its engine is open and claiming);
        its worker id."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        except TimeoutError:
            raise TimeoutError(f"worker {self.name} did not start: {self.tail()}") from None
        if not line.startswith(b"perdure worker"):
            raise RuntimeError(f"worker {self.name} failed to start ({line!r}): {self.tail()}")
        return line.split()[2].decode()

    def kill(self) -> None:
        """SIGKILL, and reap at once (a zombie would still look alive to ``kill -0``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def state(self) -> str:
        """The process state letter from /proc (R, S, T for stopped, Z for a zombie ...)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        return stat[stat.rfind(")") + 2:].split()[0]

    async def wait_log(self, *needles: str, timeout: float = 10.0) -> str:
        """Wait until the worker's log holds one of ``needles`` (a short poll of its file, with
        a hard timeout: the log is the only place a worker reports that)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    text = self.log.read_text(errors="replace")
                    if any(n in text for n in needles):
                        return text
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(f"none of {needles} in the log of {self.name} within "
                               f"{timeout} s\n{self.tail()}") from None

    async def wait_state(self, state: str, timeout: float = 10.0) -> None:
        """Wait until the process is in ``state`` (a short poll of /proc, hard timeout)."""
        try:
            async with asyncio.timeout(timeout):
                while self.state() != state:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            raise TimeoutError(f"{self.name} not in state {state} within {timeout} s "
                               f"(it is {self.state()})") from None

    def tail(self, n: int = 2000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (pid {self.pid}) stderr ---\n{text[-n:]}"


@dataclass
class Cluster:
    """Worker processes on one SQLite file, the FIFO they report to, and their ledger."""

    dir: Path
    #: the module whose attributes the workers drive, and the attribute taken by default
    app: str = APP
    target: str = "WORKFLOWS"
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "perdure.db"
        self.url = f"sqlite:///{self.db}"
        self.events = Events(self.dir / EVENTS)

    def start(self, name: str, *, hang: Sequence[str] = (), hang_after: int | None = None,
              stop: bool = False, notify: bool = False, work_ms: float = 0,
              concurrency: int | None = None, target: str | None = None,
              grace: float | None = None, log_level: str = "WARNING") -> Worker:
        """Start a worker process driving the workflows of the cluster's app (``target``
        names the attribute: a list of workflows, or an engine with other options)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
        env["PERDURE_CRASH_DIR"] = str(self.dir)
        env["PERDURE_LOG"] = log_level
        if hang:
            env["PERDURE_CRASH_HANG"] = ",".join(hang)
        if stop:
            env["PERDURE_CRASH_HANG_MODE"] = "stop"
        if hang_after is not None:
            env["PERDURE_CRASH_HANG_AFTER"] = str(hang_after)
        if notify:
            env["PERDURE_CRASH_NOTIFY"] = "1"
        if work_ms:
            env["PERDURE_CRASH_WORK_MS"] = str(work_ms)
        cmd = [sys.executable, "-m", "perdure", "worker", f"{self.app}:{target or self.target}",
               "--db", self.url]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        if grace is not None:
            cmd += ["--grace", str(grace)]
        log = self.dir / f"{name}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
        worker = Worker(name, proc, log)
        self.workers.append(worker)
        return worker

    def describe(self) -> str:
        return "\n".join(w.tail() for w in self.workers)

    async def wait_events(self, check: Callable[[list[Event]], bool], *, what: str,
                          timeout: float = 15.0) -> list[Event]:
        return await self.events.wait(check, timeout=timeout, what=what, describe=self.describe)

    def ledger(self) -> list[Event]:
        return ledger(self.dir)

    def close(self) -> None:
        """Kill and reap every worker still running; close pipes and the FIFO."""
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.kill()
            if w.proc.stdout is not None:
                w.proc.stdout.close()
        self.events.close()



def cluster_on(backend: str, request: Any, directory: Path, crash_app: tuple[str, str], *,
               sqlite_query: str = "") -> Iterator[Cluster]:
    """What the crash suites' ``cluster`` fixtures yield: worker processes of
    ``crash_app`` (module, attribute) on one SQLite file (``sqlite_query`` appended to its
    URL) or, for ``backend == "postgres"``, on a fresh clone of the session server's template
    (the ``pg`` fixture, taken from ``request``); every worker is killed and reaped at the
    end, and the clone dropped."""
    app, target = crash_app
    c = Cluster(directory, app=app, target=target)
    c.url += sqlite_query
    pg: Any = None
    name = ""
    if backend == "postgres":
        pg = request.getfixturevalue("pg")
        name = pg.new_database()
        c.url = pg.url(name)
    try:
        yield c
    finally:
        c.close()
        if pg is not None:
            pg.drop(name)

def ledger(directory: Path) -> list[Event]:
    """The side effects that really happened, in the order they happened."""
    path = directory / LEDGER
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def journal_shape(entries: list[JournalEntry]) -> list[tuple[Any, ...]]:
    """What must be equal between a crashed and a crash-free run (no timestamps)."""
    shape = []
    for e in entries:
        error = e.error_info
        shape.append((e.seq, e.kind, e.name, e.status, e.attempts, e.output,
                      None if error is None else (error.type, error.message)))
    return shape


@dataclass(frozen=True)
class Outcome:
    """How a run ended, and its journal's shape."""

    status: RunStatus
    result: Any
    journal: list[tuple[Any, ...]]


async def settle_all(client: Engine, run_ids: Sequence[str], timeout: float = 20.0
                     ) -> dict[str, Outcome]:
    """Wait for every run to finish; their outcomes by id."""

    async def one(run_id: str) -> Outcome:
        handle = client.handle(run_id)
        try:
            result: Any = await handle.result(timeout=timeout)
        except WorkflowFailed as exc:
            result = (exc.cause_type, exc.cause_message)
        status = (await handle.status()).status
        return Outcome(status, result, journal_shape(await handle.journal()))

    outcomes = await asyncio.gather(*(one(r) for r in run_ids))
    return dict(zip(run_ids, outcomes, strict=True))


async def reference(directory: Path, runs: Sequence[tuple[str, str, tuple[Any, ...]]]
                    ) -> tuple[dict[str, Outcome], list[Event]]:
    """Run ``(run id, workflow name, args)`` crash-free, in this process, on a database of
    their own: the outcomes and the ledger every crashed run is compared with."""
    directory.mkdir()
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PERDURE_CRASH_")}
    os.environ["PERDURE_CRASH_DIR"] = str(directory)
    try:
        async with Engine(f"sqlite:///{directory / 'perdure.db'}", workflows=WORKFLOWS,
                          shutdown_grace=0.5) as engine:
            for run_id, wf, args in runs:
                await engine.start(wf, *args, id=run_id)
            outcomes = await settle_all(engine, [r[0] for r in runs])
    finally:
        os.environ.pop("PERDURE_CRASH_DIR", None)
        os.environ.update(saved)
    return outcomes, ledger(directory)


def executions(entries: list[Event]) -> Counter[tuple[str, str]]:
    """How many times each (run, step or compensation) really executed."""
    return Counter((e["run"], e["name"]) for e in entries)
