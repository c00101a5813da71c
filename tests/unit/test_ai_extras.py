"""The AI integrations without their extras: importing one names the extra to install, and the
core package never imports them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import perdure


@pytest.mark.parametrize(("module", "blocked", "extra"), [
    ("perdure.ai.pydantic_ai", "pydantic_ai", "perdure[pydantic-ai]"),
    ("perdure.ai.openai_agents", "agents", "perdure[openai-agents]"),
])
def test_an_integration_without_its_extra_names_the_extra(module: str, blocked: str,
                                                          extra: str) -> None:
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"
            "from perdure.errors import InvalidConfiguration\n"
            f"try:\n    import {module}\n"
            "except InvalidConfiguration as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert extra in done.stdout


def test_the_core_package_imports_no_integration() -> None:
    code = ("import sys, perdure, perdure.testing, perdure.cli.main\n"
            "print(sorted(m for m in sys.modules if m.startswith(('perdure.ai', 'pydantic_ai',"
            " 'agents'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert not any(name.startswith("ai") for name in perdure.__all__)
