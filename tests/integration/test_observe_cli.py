"""``perdure worker`` seen from outside: metrics and health over real HTTP on 127.0.0.1, JSON
log lines, and the optional extras (the core imports neither library; a missing one is named).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perdure import Engine
from tests.integration.test_metrics import WORKFLOWS, run_workload

pytestmark = pytest.mark.crash  # real worker processes

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests.integration.test_metrics:WORKFLOWS"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    return {**env, **extra}


def get(url: str) -> tuple[int, str, str]:
    """GET ``url``: status, body, content type (errors are answers too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode(), reply.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers["Content-Type"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class WorkerProcess:
    """``perdure worker`` in a subprocess, with the URLs it says it serves."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.db = f"sqlite:///{tmp_path / 'observed.db'}"
        self.log = tmp_path / "worker.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "perdure", "worker", TARGET, "--db", self.db, *args],
                cwd=REPO, env=env or _env(), stdout=subprocess.PIPE, stderr=err)
        self.lines: list[str] = []

    async def line(self) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 20)
        if not raw:
            raise RuntimeError(f"the worker exited: {self.log.read_text()[-3000:]}")
        self.lines.append(raw.decode().rstrip("\n"))
        return self.lines[-1]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
        if worker.proc.stdout is not None:
            worker.proc.stdout.close()


async def test_metrics_and_health_are_served_over_http(
        tmp_path: Path, worker_process: list[WorkerProcess]) -> None:
    worker = WorkerProcess(tmp_path, "--metrics-port", "0", "--health-port", "0",
                           "--http-host", "127.0.0.1", "--log-format", "json")
    worker_process.append(worker)
    assert (await worker.line()).startswith("perdure worker ")
    metrics_line, health_line = await worker.line(), await worker.line()
    assert metrics_line.startswith("serving /metrics /livez /readyz /healthz on http://127.0.0.1:")
    assert health_line.startswith("serving /livez /readyz /healthz on http://127.0.0.1:")
    metrics_url, health_url = metrics_line.rsplit(" ", 1)[1], health_line.rsplit(" ", 1)[1]

    for base in (metrics_url, health_url):
        assert await asyncio.to_thread(get, f"{base}/readyz") == \
            (200, "ready: claiming runs of broken, napper, order, parent\n",
             "text/plain; charset=utf-8")
        assert (await asyncio.to_thread(get, f"{base}/livez"))[:2] == (200, "live\n")
        assert (await asyncio.to_thread(get, f"{base}/healthz"))[:2] == (200, "live\n")
    status, body, _ = await asyncio.to_thread(get, f"{health_url}/metrics")
    assert status == 404 and "/readyz" in body  # the health port serves no metrics

    async with Engine(worker.db, workflows=WORKFLOWS, worker=False) as client:
        await run_workload(client)

    status, text, content_type = await asyncio.to_thread(get, f"{metrics_url}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    got = samples(text)

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, frozenset(labels.items())))

    # The worker process started only the child run; the client started the others.
    assert value("perdure_runs_started_total", workflow="order") == 1
    assert value("perdure_runs_started_total", workflow="parent") is None
    assert value("perdure_runs_finished_total", workflow="order", status="completed") == 4
    assert value("perdure_runs_finished_total", workflow="broken", status="failed") == 1
    assert value("perdure_runs_finished_total", workflow="parent", status="completed") == 1
    assert value("perdure_step_attempts_total", workflow="order", step="flaky", kind="step",
                 outcome="failed") == 4
    assert value("perdure_step_retries_total", workflow="order", step="flaky",
                 kind="step") == 4
    assert value("perdure_step_attempts_total", workflow="broken", step="doomed", kind="step",
                 outcome="failed") == 2
    assert value("perdure_timer_lateness_seconds_count", workflow="order") == 4
    assert value("perdure_claim_latency_seconds_count", workflow="order") == 4
    assert value("perdure_runs_in_memory") == 0

    assert worker.stop() == 0
    # One JSON object per log line; the run events carry their fields.
    records = [json.loads(line) for line in worker.log.read_text().splitlines()]
    finished = [r for r in records if r["logger"] == "perdure.runs"
                and r["event"] in ("completed", "failed")]
    assert sorted((r["workflow"], r["event"]) for r in finished) == [
        ("broken", "failed"), ("order", "completed"), ("order", "completed"),
        ("order", "completed"), ("order", "completed"), ("parent", "completed")]
    assert all({"time", "level", "message", "run_id", "version", "seq", "worker"} <= set(r)
               for r in finished)


async def test_health_alone_needs_no_extra_and_one_port_serves_both(
        tmp_path: Path, worker_process: list[WorkerProcess]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = WorkerProcess(tmp_path, "--metrics-port", str(port), "--health-port", str(port),
                           "--http-host", "127.0.0.1")
    worker_process.append(worker)
    await worker.line()
    assert await worker.line() == \
        f"serving /metrics /livez /readyz /healthz on http://127.0.0.1:{port}"
    assert (await asyncio.to_thread(get, f"http://127.0.0.1:{port}/readyz"))[0] == 200
    assert worker.stop() == 0


def test_a_port_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "perdure", "worker", TARGET, "--db",
             f"sqlite:///{tmp_path / 'x.db'}", "--health-port", str(port), "--http-host",
             "127.0.0.1"], capture_output=True, text=True, cwd=REPO, env=_env(), timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == \
        f"perdure: cannot serve HTTP on 127.0.0.1:{port}: Address already in use"


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(PYTHONPATH=str(REPO)), timeout=60)


def test_the_core_imports_neither_library(tmp_path: Path) -> None:
    done = _python(
        "import asyncio, sys\n"
        "from perdure import Engine\n"
        "from perdure.cli.main import main\n"
        "from tests.integration.test_metrics import WORKFLOWS, order\n"
        "async def go():\n"
        "    async with Engine('sqlite:///core.db', workflows=WORKFLOWS) as engine:\n"
        "        print(await (await engine.start(order, 'x')).result(timeout=10))\n"
        "asyncio.run(go())\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                ('opentelemetry', 'prometheus_client'))\n"
        "print(loaded)\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "X\n[]\n"


@pytest.mark.parametrize(("hidden", "option", "message"), [
    ("prometheus_client", "--metrics-port=0",
     "metrics need prometheus-client: pip install 'perdure[metrics]'"),
    ("opentelemetry", "--tracing", "tracing needs OpenTelemetry: pip install 'perdure[otel]'"),
])
def test_an_option_without_its_extra_names_the_extra(tmp_path: Path, hidden: str, option: str,
                                                      message: str) -> None:
    done = _python(
        "import sys\n"
        f"sys.modules[{hidden!r}] = None  # as if it were not installed\n"
        "from perdure.cli.main import main\n"
        f"sys.exit(main(['worker', {TARGET!r}, '--db', 'sqlite:///m.db', {option!r}]))\n",
        tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"perdure: InvalidConfiguration: {message}"


def test_tracing_without_opentelemetry_names_the_extra(tmp_path: Path) -> None:
    done = _python(
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "from perdure import Engine, InvalidConfiguration\n"
        "try:\n"
        "    Engine('sqlite:///:memory:', tracing=True)\n"
        "except InvalidConfiguration as exc:\n"
        "    print(exc)\n", tmp_path)
    assert done.stdout == "tracing needs OpenTelemetry: pip install 'perdure[otel]'\n", \
        done.stderr
