"""The observability pieces on their own: log formats, the health endpoints' WSGI app, the
event loop watch."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from perdure.observe import JsonFormatter, Readiness
from perdure.observe.health import LoopWatch
from perdure.observe.http import Endpoints
from perdure.observe.logs import RUNS, run_event, utc


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _capture() -> _Keep:
    keep = _Keep()
    RUNS.addHandler(keep)
    RUNS.setLevel(logging.DEBUG)
    return keep


def test_a_run_event_is_logfmt_text_and_json_fields() -> None:
    keep = _capture()
    try:
        run_event("parked", {"run_id": "r 1", "workflow": "w", "seq": 3, "wake_at": None,
                             "reason": 'waiting for signal "go"'})
    finally:
        RUNS.removeHandler(keep)
        RUNS.setLevel(logging.NOTSET)
    [record] = keep.records
    assert record.getMessage() == \
        'parked run_id="r 1" workflow=w seq=3 reason="waiting for signal \\"go\\""'
    data = json.loads(JsonFormatter().format(record))
    assert data.pop("time").endswith("Z")
    assert data == {"level": "INFO", "logger": "perdure.runs", "message": "parked",
                    "event": "parked", "run_id": "r 1", "workflow": "w", "seq": 3,
                    "reason": 'waiting for signal "go"'}


def test_json_lines_carry_extras_and_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("perdure.worker", logging.ERROR, __file__, 1,
                                   "claiming failed; retrying in %.2f s", (0.5,),
                                   sys.exc_info())
    record.dead_worker = "host-1-ab"
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "claiming failed; retrying in 0.50 s"
    assert data["dead_worker"] == "host-1-ab"
    assert data["exception"].startswith("Traceback") and "ValueError: boom" in data["exception"]


def test_utc_times_have_milliseconds_and_a_z() -> None:
    assert utc(0.0) == "1970-01-01T00:00:00.000Z"
    assert utc(None) is None


def _call(app: Endpoints, path: str, method: str = "GET") -> tuple[str, str]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": method}, start_response))
    return answer["status"], body.decode()


def test_the_endpoints_answer_probes() -> None:
    state = [Readiness(True, "claiming runs of w")]
    app = Endpoints(readiness=lambda: state[-1], loop=None)
    assert _call(app, "/readyz") == ("200 OK", "ready: claiming runs of w\n")
    state.append(Readiness(False, "draining: no new claims"))
    assert _call(app, "/readyz") == ("503 Service Unavailable",
                                     "not ready: draining: no new claims\n")
    assert _call(app, "/livez") == ("200 OK", "live\n")
    assert _call(app, "/livez", "HEAD") == ("200 OK", "")
    assert _call(app, "/readyz", "POST")[0] == "405 Method Not Allowed"
    assert _call(app, "/metrics") == ("404 Not Found",
                                      "no /metrics; try: /livez, /readyz, /healthz\n")
    assert _call(app, "/") == ("200 OK", "/livez\n/readyz\n/healthz\n")


async def test_a_stalled_event_loop_is_not_live() -> None:
    watch = LoopWatch(asyncio.get_running_loop(), every=0.05)
    watch.start()
    try:
        app = Endpoints(readiness=lambda: Readiness(True, "ok"), loop=watch, live_within=0.2)
        assert _call(app, "/livez")[0] == "200 OK"
        time.sleep(0.4)  # the loop itself is blocked: this is what the probe must notice
        status, body = _call(app, "/livez")
        assert status == "503 Service Unavailable"
        assert body.startswith("not live: the event loop is ")
        while watch.stalled_for() > 0:  # the loop turns again, and ticks
            await asyncio.sleep(0)
        assert _call(app, "/livez")[0] == "200 OK"
    finally:
        watch.stop()
    assert watch.stalled_for() == float("inf")
