"""The README's alert rules are valid Prometheus rules that fire when they should.

The rules are the ```yaml block after the ``alert rules`` marker in README.md. ``promtool``
(Prometheus' own tool: ``apt-get install prometheus``) checks them and runs them against
synthetic series of Perdure's metric names; the test is skipped where promtool is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- alert rules: tested by tests/integration/test_alert_rules.py -->"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Prometheus) not installed")


def readme_rules() -> str:
    text = README.read_text(encoding="utf-8")
    after = text.split(MARKER, 1)[1].lstrip("\n")
    assert after.startswith("```yaml\n"), "the marker must be followed by the ```yaml block"
    return after[len("```yaml\n"):].split("\n```", 1)[0] + "\n"


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def alert(at: str, name: str, *expected: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": list(expected)}


FINISHED = "perdure_runs_finished_total"

TESTS = [
    {   # Stuck: a run of checkout blocked in the last 15 minutes; none of ship.
        "interval": "1m",
        "input_series": [
            series(FINISHED, "0 0 1 1 1 1", workflow="checkout", status="blocked",
                   instance="w1"),
            series(FINISHED, "0 0 0 0 0 0", workflow="ship", status="blocked", instance="w1"),
        ],
        "alert_rule_test": [alert("5m", "PerdureRunsBlocked", {
            "exp_labels": {"severity": "page", "workflow": "checkout"},
            "exp_annotations": {"summary": "blocked runs of checkout: deploy the right code, "
                                           "then perdure resume"}})],
    },
    {   # Stuck: runs of checkout wait 30-60 s to be claimed, for longer than 10 minutes.
        "interval": "1m",
        "input_series": [
            series("perdure_claim_latency_seconds_bucket", "0+0x30", workflow="checkout",
                   le="30.0"),
            series("perdure_claim_latency_seconds_bucket", "0+10x30", workflow="checkout",
                   le="60.0"),
            series("perdure_claim_latency_seconds_bucket", "0+10x30", workflow="checkout",
                   le="+Inf"),
        ],
        "alert_rule_test": [
            alert("8m", "PerdureRunsWaitForWorkers"),  # not for 10 minutes yet
            alert("20m", "PerdureRunsWaitForWorkers", {
                "exp_labels": {"severity": "page", "workflow": "checkout"},
                "exp_annotations": {"summary": "runs of checkout wait over 30 s for a "
                                               "worker"}}),
        ],
    },
    {   # Failure rate: 10% of pay's runs fail (alert), 1% of ship's (no alert).
        "interval": "1m",
        "input_series": [
            series(FINISHED, "0+90x30", workflow="pay", status="completed", instance="w1"),
            series(FINISHED, "0+10x30", workflow="pay", status="failed", instance="w1"),
            series(FINISHED, "0+99x30", workflow="ship", status="completed", instance="w1"),
            series(FINISHED, "0+1x30", workflow="ship", status="failed", instance="w1"),
        ],
        "alert_rule_test": [alert("25m", "PerdureRunFailureRate", {
            "exp_labels": {"severity": "ticket", "workflow": "pay"},
            "exp_annotations": {"summary": "over 5% of the runs of pay fail"}})],
    },
    {   # Lateness: timers fire 10-30 s late.
        "interval": "1m",
        "input_series": [
            series("perdure_timer_lateness_seconds_bucket", "0+0x30", workflow="nap",
                   le="10.0"),
            series("perdure_timer_lateness_seconds_bucket", "0+5x30", workflow="nap",
                   le="30.0"),
            series("perdure_timer_lateness_seconds_bucket", "0+5x30", workflow="nap",
                   le="+Inf"),
        ],
        "alert_rule_test": [alert("25m", "PerdureTimersLate", {
            "exp_labels": {"severity": "ticket"},
            "exp_annotations": {"summary": "timers fire over 10 s late: add workers or look "
                                           "at the database"}})],
    },
]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_the_readme_rules_are_valid(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(readme_rules())
    done = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


def test_the_readme_rules_fire_on_stuck_runs_failures_and_lateness(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(readme_rules())
    # JSON is YAML: the test file needs no YAML library.
    (tmp_path / "tests.yml").write_text(json.dumps(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": TESTS}))
    done = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
