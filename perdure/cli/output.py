"""How the ``perdure`` command prints runs and journals for a person."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from perdure.records import JournalEntry, RunInfo

__all__ = ["print_run", "print_runs"]


def _fmt_time(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _short(text: str | None, width: int = 48) -> str:
    if text is None:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def print_runs(runs: list[RunInfo]) -> None:
    rows = [(r.id, r.workflow, r.version, r.status.value, _fmt_time(r.created_at),
             _fmt_time(r.updated_at), r.parent_id or "-") for r in runs]
    print(_table(rows, ("ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "UPDATED", "PARENT")))


def print_run(info: RunInfo, journal: list[JournalEntry]) -> None:
    print(f"run       {info.id}")
    print(f"workflow  {info.workflow} (version {info.version})")
    print(f"status    {info.status.value}")
    if info.parent_id:
        print(f"parent    {info.parent_id}")
    if info.error is not None:
        print(f"error     {info.error.type}: {info.error.message}")
    elif info.unreadable is not None:
        print(f"error     {info.unreadable}")
    if info.blocked_reason:
        print(f"blocked   {info.blocked_reason}")
    print(f"created   {_fmt_time(info.created_at)}   updated {_fmt_time(info.updated_at)}")
    print()
    rows = []
    for e in journal:
        err = e.error_info
        if e.unreadable is not None:
            outcome = _short(e.unreadable)  # e.g. "encrypted (key 'k1')": this process lacks it
        elif err is None:
            outcome = _short(e.output)
        else:
            outcome = _short(f"{err.type}: {err.message}")
        rows.append((str(e.seq), e.kind, e.name, e.status, str(e.attempts), outcome,
                     _fmt_time(e.finished_at)))
    print(_table(rows, ("SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "OUTCOME", "AT")))
