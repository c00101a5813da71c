"""How the ``perdure`` command prints runs and journals for a person.

Times are UTC in ISO 8601 with a ``Z``: the same on every machine an operator looks from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from perdure.records import JournalEntry, ResumeRecord, RunInfo, RunStatus

__all__ = ["print_run", "print_runs", "table"]

#: how much of an argument, result or error ``runs show`` prints unless asked for all
SHORT = 200


def _fmt_time(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Rows under a header, columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _short(text: str | None, width: int | None) -> str:
    if text is None:
        return "-"
    text = " ".join(text.split()) if width is not None else text
    if width is None or len(text) <= width:
        return text
    return f"{text[: width - 1]}… ({len(text) - width + 1} more characters)"



def _status(info: RunInfo) -> str:
    if info.failed_compensations:
        return (f"{info.status.value} (compensation failed: "
                f"{', '.join(info.failed_compensations)})")
    return info.status.value


def print_runs(runs: list[RunInfo]) -> None:
    """One line per run."""
    rows = [(r.id, r.workflow, r.version, _status(r), _fmt_time(r.created_at),
             _fmt_time(r.updated_at), _fmt_time(r.wake_at), r.parent_id or "-") for r in runs]
    print(table(rows, ("ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "UPDATED", "WAKES",
                        "PARENT")))


def print_run(info: RunInfo, journal: list[JournalEntry],
              history: Sequence[ResumeRecord] = (), *, full: bool = False) -> None:
    """A run's status, arguments and result, its resume history, then its journal as a table
    (DUE: when a timer fires, a step's next attempt starts, or a wait for a signal times out)."""
    width = None if full else SHORT
    fields: list[tuple[str, str]] = [
        ("run", info.id),
        ("workflow", f"{info.workflow} (version {info.version})"),
        ("status", _status(info) + (" (cancellation requested)"
                                    if info.cancel_requested and not info.status.terminal
                                    else "")),
    ]
    if info.generation:
        fields.append(("resumed", f"generation {info.generation} (step keys end in "
                                  f":g{info.generation})"))
    if info.parent_id:
        fields.append(("parent", info.parent_id))
    if info.queue is not None:
        fields.append(("queue", f"{info.queue} (priority {info.priority})"))
    if info.key is not None:
        fields.append(("key", info.key))
    if info.requires:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(info.requires.items()))
        fields.append(("requires", labels + ("  (no live worker has these labels)"
                                             if info.unroutable else "")))
    if info.waiting_for:
        fields.append(("waiting", info.waiting_for))
    if info.wake_at is not None:
        fields.append(("wakes at", _fmt_time(info.wake_at)))
    if info.deadline is not None:
        fields.append(("deadline", _fmt_time(info.deadline)))
    fields.append(("arguments", _short(info.input, width)))
    if info.output is not None:
        fields.append(("result", _short(info.output, width)))
    if info.error is not None:
        fields.append(("error", _short(f"{info.error.type}: {info.error.message}", width)))
    if info.blocked_reason:
        fields.append(("blocked", _short(info.blocked_reason, width)))
    fields.append(("created", _fmt_time(info.created_at)))
    fields.append(("updated", _fmt_time(info.updated_at)))
    label = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(label)}  {value}")
    cell = None if full else 48
    for record in history:
        # What a resume superseded stays visible: an auditor must see the failure and what
        # was compensated, not only the journal that replay reads now.
        print()
        if record.status is RunStatus.BLOCKED:
            ending = f"blocked: {record.blocked_reason}"
        else:
            err = record.error
            ending = f"{record.status.value}: " + ("-" if err is None
                                                   else f"{err.type}: {err.message}")
            if record.failed_compensations:
                ending += (f" (compensation failed: "
                           f"{', '.join(record.failed_compensations)})")
        print(f"generation {record.generation} ended {ending}")
        print(f"  at {_fmt_time(record.ended_at)}; resumed at {_fmt_time(record.resumed_at)}")
        if record.superseded:
            print(_journal(record.superseded, cell))
    print()
    if history:
        print("current journal:")
    print(_journal(journal, cell))


def _journal(entries: Sequence[JournalEntry], cell: int | None) -> str:
    rows = []
    for e in entries:
        err = e.error_info
        outcome = _short(e.output if err is None else f"{err.type}: {err.message}", cell)
        rows.append((str(e.seq), e.kind, e.name, e.status, str(e.attempts),
                     _fmt_time(e.due_at), outcome, _fmt_time(e.started_at),
                     _fmt_time(e.finished_at)))
    return table(rows, ("SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "DUE", "OUTCOME",
                         "STARTED", "FINISHED"))
