"""Exported run histories: the versioned JSON written by ``perdure runs export`` and read by
``perdure.testing.replay``.

One file holds one or more runs::

    {"format": "perdure.journal", "format_version": 1, "exported_at": "2025-01-31T08:00:00Z",
     "runs": [{"id": "order-42", "workflow": "checkout", "version": "1",
               "status": "completed", "input": "<the encoded arguments>", "output": "...",
               "error": null, "generation": 0, "incarnation": 0,
               "journal": [{"seq": 0, "kind": "step", "name": "reserve", "status": "completed",
                            "attempts": 1, "output": "...", "error": null, "due_at": null,
                            "started_at": 1738310400.0, "finished_at": 1738310400.1}]}]}

Payloads (``input``, ``output``, ``error``) are the codec's JSON *text*, kept verbatim so a
replay decodes exactly what the run recorded. A reader refuses any other ``format_version``
with :class:`~perdure.errors.JournalFormatError`, so a file never half-replays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perdure.errors import JournalFormatError
from perdure.records import JournalEntry

__all__ = ["FORMAT", "FORMAT_VERSION", "ExportedRun", "document", "load_paths"]

FORMAT = "perdure.journal"
FORMAT_VERSION = 1

_ENTRY_FIELDS = ("seq", "kind", "name", "status", "attempts", "output", "error", "due_at",
                 "started_at", "finished_at")


@dataclass(frozen=True, slots=True)
class ExportedRun:
    """One run of an export: what it ran with, how it stands, and its current journal."""

    id: str
    workflow: str
    version: str
    status: str
    input: str
    output: str | None
    error: str | None
    generation: int
    incarnation: int
    journal: tuple[JournalEntry, ...]
    #: the file it was read from (empty for one built in memory)
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        """The run as the export format writes it."""
        data = {k: getattr(self, k) for k in ("id", "workflow", "version", "status", "input",
                                              "output", "error", "generation", "incarnation")}
        data["journal"] = [asdict(e) for e in self.journal]
        return data


def document(runs: Sequence[ExportedRun], *, exported_at: float) -> dict[str, Any]:
    """The export document for ``runs``."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "exported_at": datetime.fromtimestamp(exported_at, UTC).isoformat(),
            "runs": [r.to_json() for r in runs]}


def load_paths(paths: str | Path | Iterable[str | Path]) -> list[ExportedRun]:
    """Every run in the export files ``paths`` (a file, a directory of ``*.json`` files, or a
    list of either), in order. Raises ``JournalFormatError`` for a file that is not an export
    of a known format version, and ``FileNotFoundError`` for a missing path."""
    if isinstance(paths, str | Path):
        paths = [paths]
    runs: list[ExportedRun] = []
    for given in paths:
        path = Path(given)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            runs += _load_file(file)
    return runs


def _load_file(path: Path) -> list[ExportedRun]:
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JournalFormatError(f"{path} is not a Perdure journal export (not JSON: "
                                 f"{exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise JournalFormatError(f"{path} is not a Perdure journal export (its 'format' is "
                                 f"not {FORMAT!r})")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise JournalFormatError(
            f"{path} has journal format version {version!r}; this Perdure reads version "
            f"{FORMAT_VERSION} (export the runs again with this version's `perdure runs "
            "export`)")
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise JournalFormatError(f"{path}: 'runs' must be a list")
    return [_run(path, i, r) for i, r in enumerate(runs)]


def _run(path: Path, index: int, data: Any) -> ExportedRun:
    try:
        journal = tuple(JournalEntry(**{k: e[k] for k in _ENTRY_FIELDS}) for e in data["journal"])
        run = ExportedRun(str(data["id"]), str(data["workflow"]), str(data["version"]),
                          str(data["status"]), str(data["input"]), data["output"],
                          data["error"], int(data["generation"]), int(data["incarnation"]),
                          journal, str(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalFormatError(f"{path}: run #{index} is malformed ({type(exc).__name__}: "
                                 f"{exc})") from None
    if any(not isinstance(e.seq, int) or not isinstance(e.kind, str) or
           not isinstance(e.name, str) for e in journal):
        raise JournalFormatError(f"{path}: run {run.id!r} has a malformed journal entry")
    return run
