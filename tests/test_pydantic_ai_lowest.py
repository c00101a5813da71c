"""The lowest Pydantic AI that ``perdure[pydantic-ai]`` supports, tested like the newest.

The dev environment has the newest release the extra's range allows; this test builds (once,
cached inside ``.venv``) a second environment with the lowest one, and runs the core agent tests
there in a subprocess: the in-process suite and the SIGKILL test, on SQLite.

Building that environment is mostly waiting on the package index (a few minutes on a fresh
machine, where nothing is cached), so it starts in the background as soon as the test is
collected (``prepare_in_background``, called by tests/conftest.py) and the test only waits for
what is left of it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lowest(extra: str, package: str) -> str:
    """The lower bound of an extra, read from pyproject.toml (so the two cannot drift)."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(rf'^{extra} = \["{package}>=([\d.]+),', text, re.M)
    assert found, f"the {extra} extra must pin a lower bound"
    return found.group(1)


class Build:
    """The lowest-version venv with Perdure (editable), pydantic-ai-slim==version and the
    lowest OpenAI Agents SDK (the crash tests' app uses both), built once, on a thread.

    The commands run as child processes the thread waits on; ``cancel`` kills the running one
    (a session that ends before the test: its interpreter must not wait minutes for pip).
    Nothing is marked built unless pip succeeded, so an interrupted build is redone next time.
    """

    def __init__(self, version: str, openai_agents: str) -> None:
        self.home = Path(sys.prefix) / f"pydantic-ai-{version}-openai-agents-{openai_agents}"
        self.python = self.home / "bin" / "python"
        self.stamp = self.home / ".installed"
        self._steps = [
            [sys.executable, "-m", "venv", str(self.home)],
            [str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-e", str(ROOT), f"pydantic-ai-slim=={version}",
             f"openai-agents=={openai_agents}", "pytest>=8", "pytest-asyncio>=0.24",
             "pytest-timeout>=2.3"],
        ]
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="lowest-venv", daemon=True)

    def start(self) -> None:
        if not self.stamp.exists():
            self._thread.start()

    def _run(self) -> None:
        for argv in self._steps:
            with self._lock:
                if self._cancelled:
                    return
                self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT)
            out, _ = self._proc.communicate()
            if self._proc.returncode != 0:
                self._error = f"{argv[:4]} failed ({self._proc.returncode}):\n" \
                              f"{out.decode(errors='replace')[-4000:]}"
                return
        self.stamp.touch()

    def result(self, timeout: float) -> Path:
        """The environment's python, once built (building it here if nothing started it)."""
        if self._thread.ident is None and not self.stamp.exists():
            self._thread.start()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        assert self._error is None, self._error
        assert self.stamp.exists(), f"the lowest-version venv is not built after {timeout} s"
        return self.python

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()


_build: Build | None = None


def _the_build() -> Build:
    global _build
    if _build is None:
        _build = Build(lowest("pydantic-ai", "pydantic-ai-slim"),
                       lowest("openai-agents", "openai-agents"))
    return _build


def prepare_in_background() -> None:
    """Start building the environment now (tests/conftest.py calls this once the test is
    among those selected)."""
    _the_build().start()


def stop_background() -> None:
    """End a build the session did not wait for (tests/conftest.py, at the session's end)."""
    if _build is not None:
        _build.cancel()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_core_agent_tests_pass_on_the_lowest_supported_pydantic_ai() -> None:
    version = lowest("pydantic-ai", "pydantic-ai-slim")
    python = _the_build().result(timeout=480)
    found = subprocess.run(
        [str(python), "-c", "import pydantic_ai; print(pydantic_ai.__version__)"],
        capture_output=True, text=True, check=True)
    assert found.stdout.strip() == version
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "not postgres and not openai", "tests/integration/test_agents_pydantic_ai.py",
         "tests/crash/agents"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed", done.stdout)
