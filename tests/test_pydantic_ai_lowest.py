"""The lowest Pydantic AI that ``perdure[pydantic-ai]`` supports, tested like the newest.

The dev environment has the newest release the extra's range allows; this test builds (once,
cached inside ``.venv``) a second environment with the lowest one, and runs the core agent tests
there in a subprocess: the in-process suite and the SIGKILL test, on SQLite.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lowest(extra: str, package: str) -> str:
    """The lower bound of an extra, read from pyproject.toml (so the two cannot drift)."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(rf'^{extra} = \["{package}>=([\d.]+),', text, re.M)
    assert found, f"the {extra} extra must pin a lower bound"
    return found.group(1)


def environment(version: str, openai_agents: str) -> Path:
    """A venv with Perdure (editable), pydantic-ai-slim==version and the lowest OpenAI Agents
    SDK (the crash tests' app uses both), built once."""
    home = Path(sys.prefix) / f"pydantic-ai-{version}-openai-agents-{openai_agents}"
    python = home / "bin" / "python"
    stamp = home / ".installed"
    if stamp.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-e", str(ROOT),
                    f"pydantic-ai-slim=={version}", f"openai-agents=={openai_agents}",
                    "pytest>=8", "pytest-asyncio>=0.24", "pytest-timeout>=2.3"],
                   check=True, capture_output=True)
    stamp.touch()
    return python


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_core_agent_tests_pass_on_the_lowest_supported_pydantic_ai() -> None:
    version = lowest("pydantic-ai", "pydantic-ai-slim")
    python = environment(version, lowest("openai-agents", "openai-agents"))
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
