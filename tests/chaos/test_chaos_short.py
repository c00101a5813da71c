"""The short chaos run in CI: real workers SIGKILLed (and PostgreSQL restarted) under load.

The long version is ``python -m chaos --runs 1000`` (see the README); this one runs a few
hundred orders so the suite stays quick, with the same invariants.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pgserver import postgres_available

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.crash
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_short_chaos_run_keeps_every_invariant(backend: str, tmp_path: Path) -> None:
    if backend == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL server binaries are not installed")
    out = tmp_path / "chaos.json"
    args = [sys.executable, "-m", "chaos", "--backend", backend, "--runs", "300",
            "--kill-every", "1", "--timeout", "180", "--json", str(out)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=230)
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    result = json.loads(out.read_text())
    failed = [i for i in result["invariants"] if not i["holds"]]
    assert proc.returncode == 0 and not failed, failed
    assert result["kills"] >= 1
    if backend == "postgres":
        assert result["db_restarts"] == 2
