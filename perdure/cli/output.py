"""How the ``perdure`` command prints runs and journals for a person.

Times are UTC in ISO 8601 with a ``Z``: the same on every machine an operator looks from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from perdure.records import ErrorInfo, JournalEntry, ResumeRecord, RunInfo, RunStatus

__all__ = ["entry_json", "print_run", "print_runs", "run_json", "table", "time_text"]

#: how much of an argument, result or error ``runs show`` prints unless asked for all
SHORT = 200


def time_text(value: datetime | float | None) -> str | None:
    """A time as the CLI shows it (UTC, ISO 8601, milliseconds, ``Z``); None stays None."""
    return None if value is None else _fmt_time(value)


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


def _tags(tags: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items())) or "-"


def print_runs(runs: Sequence[RunInfo]) -> None:
    """One line per run."""
    rows = [(r.id, r.workflow, r.version, _status(r), _fmt_time(r.created_at),
             _fmt_time(r.updated_at), _fmt_time(r.wake_at), r.parent_id or "-",
             _short(_tags(r.tags), 60)) for r in runs]
    print(table(rows, ("ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "UPDATED", "WAKES",
                        "PARENT", "TAGS")))


def print_run(info: RunInfo, journal: list[JournalEntry],
              history: Sequence[ResumeRecord] = (), *, full: bool = False,
              children: Sequence[str] = (), more_children: bool = False) -> None:
    """A run's status, tags, family, arguments and result or error (with its traceback), its
    resume history, then its journal as a table (DUE: when a timer fires, a step's next
    attempt starts, or a wait for a signal times out)."""
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
    if info.tags:
        fields.append(("tags", _tags(info.tags)))
    if info.parent_id:
        fields.append(("parent", info.parent_id))
    if children:
        fields.append(("children", ", ".join(children) + (", ... (more: perdure runs list "
                                                           f"--parent {info.id})"
                                                           if more_children else "")))
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
    unread = info.unreadable  # e.g. "encrypted (key 'k1')": this process lacks the key
    fields.append(("arguments", unread if not info.input and unread
                   else _short(info.input, width)))
    if info.output is not None:
        fields.append(("result", _short(info.output, width)))
    if info.incarnation:
        fields.append(("incarnation", f"continued as new {info.incarnation} time(s): this is "
                                      f"incarnation {info.incarnation} (earlier journals: "
                                      "handle.incarnations())"))
    if info.forked_from:
        fields.append(("forked", f"from {info.forked_from} at seq {info.forked_seq} (entries "
                                 "before it were copied)"))
    if info.pause_requested and info.status in (RunStatus.RUNNING, RunStatus.WAITING,
                                                RunStatus.PENDING):
        fields.append(("pausing", "at its next durable await (an operator paused it)"))
    if info.error is not None:
        fields.append(("error", _short(f"{info.error.type}: {info.error.message}", width)))
    elif info.unreadable is not None:
        fields.append(("error", info.unreadable))
    if info.blocked_reason:
        fields.append(("blocked", _short(info.blocked_reason, width)))
    fields.append(("created", _fmt_time(info.created_at)))
    fields.append(("updated", _fmt_time(info.updated_at)))
    label = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(label)}  {value}")
    if info.error is not None and info.error.traceback:
        print()
        print(info.error.traceback.rstrip())
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
        if e.unreadable is not None:
            # e.g. "encrypted (key 'k1')": this process lacks the key
            outcome = _short(e.unreadable, cell)
        elif err is None:
            outcome = _short(e.output, cell)
        else:
            outcome = _short(f"{err.type}: {err.message}", cell)
        rows.append((str(e.seq), e.kind, e.name, e.status, str(e.attempts),
                     _fmt_time(e.due_at), outcome, _fmt_time(e.started_at),
                     _fmt_time(e.finished_at)))
    return table(rows, ("SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "DUE", "OUTCOME",
                         "STARTED", "FINISHED"))


def _decoded(text: str | None) -> Any:
    """A payload the codec recorded (JSON text) as a JSON value, so ``--json`` nests it;
    text that is not JSON stays a string."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_json(error: ErrorInfo | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def run_json(info: RunInfo) -> dict[str, Any]:
    """A run as ``--json`` and ``--output jsonl`` print it (times as the CLI shows them)."""
    return {
        "id": info.id, "workflow": info.workflow, "version": info.version,
        "status": info.status.value, "tags": dict(info.tags), "parent_id": info.parent_id,
        "generation": info.generation, "created_at": time_text(info.created_at),
        "updated_at": time_text(info.updated_at), "wake_at": time_text(info.wake_at),
        "waiting_for": info.waiting_for, "deadline": time_text(info.deadline),
        "cancel_requested": info.cancel_requested, "arguments": _decoded(info.input),
        "result": _decoded(info.output), "error": _error_json(info.error),
        "blocked_reason": info.blocked_reason,
        "failed_compensations": list(info.failed_compensations),
    }


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """A journal entry as ``runs show --json`` prints it."""
    return {
        "seq": entry.seq, "kind": entry.kind, "name": entry.name, "status": entry.status,
        "attempts": entry.attempts, "output": _decoded(entry.output),
        "error": _error_json(entry.error_info), "due_at": time_text(entry.due_at),
        "started_at": time_text(entry.started_at), "finished_at": time_text(entry.finished_at),
    }
