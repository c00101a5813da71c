"""The README's Python examples run, so they cannot rot.

Every fenced block opened with ```` ```python ```` in README.md is a self-contained script: it
runs in a fresh interpreter, in an empty temporary directory, with the repository root on
``PYTHONPATH``. A block is skipped when its first line is ``# not run`` or when the line
before it (blank lines aside) is ``<!-- skip -->``; blocks inside an HTML comment are not
rendered, so they are not run either.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TIMEOUT = 60.0  # seconds per block

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(?P<title>.*?)\s*#*\s*$")
_SKIP = re.compile(r"^\s*<!--\s*skip\s*-->\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One fenced Python block of the README."""

    heading: str  # the nearest heading above it ("" before the first)
    line: int  # 1-based line number of its first code line
    code: str
    skip: str | None  # why it is not run, or None


def extract_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, in order, with their skip reasons."""
    blocks: list[Block] = []
    heading = ""
    in_comment = False
    last_nonblank = ""  # the last non-blank line outside code blocks
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if in_comment:
            in_comment = "-->" not in line
            last_nonblank = line if line.strip() else last_nonblank
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            heading_match = _HEADING.match(line)
            if heading_match is not None:
                heading = heading_match.group("title")
            # An HTML comment that opens on this line and does not close on it.
            opened = line.rfind("<!--")
            in_comment = opened != -1 and "-->" not in line[opened:]
            last_nonblank = line if line.strip() else last_nonblank
            i += 1
            continue
        # A code block: find its closing fence (same character, at least as long).
        marker = fence.group("fence")
        info = fence.group("info").split()
        language = info[0].lower() if info else ""
        end = i + 1
        while end < len(lines):
            close = _FENCE.match(lines[end])
            if (close is not None and close.group("info") == ""
                    and close.group("fence")[0] == marker[0]
                    and len(close.group("fence")) >= len(marker)):
                break
            end += 1
        if language == "python":
            code = "\n".join(lines[i + 1:end]) + "\n"
            first = next((c.strip() for c in code.splitlines() if c.strip()), "")
            skip = None
            if first.lower().startswith("# not run"):
                skip = "marked '# not run'"
            elif _SKIP.match(last_nonblank):
                skip = "marked <!-- skip -->"
            blocks.append(Block(heading, i + 2, code, skip))
        last_nonblank = lines[min(end, len(lines) - 1)]
        i = end + 1
    return blocks


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "top"


def _params() -> list[object]:
    if not README.exists():
        return [pytest.param(None, id="no-readme",
                             marks=pytest.mark.skip(reason="README.md does not exist yet"))]
    blocks = extract_blocks(README.read_text(encoding="utf-8"))
    if not blocks:
        return [pytest.param(None, id="no-blocks", marks=pytest.mark.skip(
            reason="README.md has no ```python blocks"))]
    params: list[object] = []
    per_heading: dict[str, int] = {}
    for block in blocks:
        slug = _slug(block.heading)
        per_heading[slug] = per_heading.get(slug, 0) + 1
        marks = [pytest.mark.skip(reason=block.skip)] if block.skip else []
        params.append(pytest.param(block, id=f"{slug}-{per_heading[slug]}", marks=marks))
    return params


@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("block", _params())
def test_readme_python_block_runs(block: Block, tmp_path: Path) -> None:
    # Padded with blank lines so that a traceback's line numbers are README.md's.
    script = tmp_path / "README_example.py"
    script.write_text("\n" * (block.line - 1) + block.code, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    env.pop("PERDURE_DATABASE_URL", None)  # examples use their own (default) database
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README.md line {block.line} (under {block.heading!r}): the example did "
                    f"not finish within {TIMEOUT:.0f} s")
    if proc.returncode != 0:
        numbered = "\n".join(f"{n:4d} | {code}" for n, code in
                             enumerate(block.code.splitlines(), start=block.line))
        pytest.fail(f"README.md line {block.line} (under {block.heading!r}) exited with "
                    f"{proc.returncode}\n--- code\n{numbered}\n--- stdout\n{proc.stdout}"
                    f"--- stderr\n{proc.stderr}", pytrace=False)


def test_readme_gives_the_setup_commands() -> None:
    if not README.exists():
        pytest.skip("README.md does not exist yet")
    text = README.read_text(encoding="utf-8")
    for command in ("make demo", "make test"):
        assert command in text, f"README.md should tell readers to run `{command}`"


def test_extract_blocks_follows_the_skip_rules() -> None:
    text = "\n".join([
        "# Title",
        "```python",
        "print('runs')",
        "```",
        "## Second section",
        "```python",
        "# not run",
        "raise SystemExit(1)",
        "```",
        "<!-- skip -->",
        "",
        "```python",
        "raise SystemExit(2)",
        "```",
        "<!--",
        "```python",
        "raise SystemExit(3)  # commented out: not rendered, not run",
        "```",
        "-->",
        "````markdown",
        "```python",
        "nested in another block: not a block of its own",
        "```",
        "````",
        "```bash",
        "make test",
        "```",
        "~~~python",
        "print('tilde fence')",
        "~~~",
    ])
    blocks = extract_blocks(text)
    assert [(b.heading, b.code, b.skip) for b in blocks] == [
        ("Title", "print('runs')\n", None),
        ("Second section", "# not run\nraise SystemExit(1)\n", "marked '# not run'"),
        ("Second section", "raise SystemExit(2)\n", "marked <!-- skip -->"),
        ("Second section", "print('tilde fence')\n", None),
    ]
    assert blocks[0].line == 3
