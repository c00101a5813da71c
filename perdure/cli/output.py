"""How the ``perdure`` command prints runs and journals for a person."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from perdure.records import JournalEntry, ResumeRecord, RunInfo, RunStatus

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


def _status(info: RunInfo) -> str:
    if info.failed_compensations:
        return (f"{info.status.value} (compensation failed: "
                f"{', '.join(info.failed_compensations)})")
    return info.status.value


def print_runs(runs: list[RunInfo]) -> None:
    rows = [(r.id, r.workflow, r.version, _status(r), _fmt_time(r.created_at),
             _fmt_time(r.updated_at), r.parent_id or "-") for r in runs]
    print(_table(rows, ("ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "UPDATED", "PARENT")))


def print_run(info: RunInfo, journal: list[JournalEntry],
              history: Sequence[ResumeRecord] = ()) -> None:
    print(f"run       {info.id}")
    print(f"workflow  {info.workflow} (version {info.version})")
    print(f"status    {_status(info)}")
    if info.generation:
        print(f"resumed   generation {info.generation} (step keys end in :g{info.generation})")
    if info.parent_id:
        print(f"parent    {info.parent_id}")
    if info.incarnation:
        print(f"continued as new {info.incarnation} time(s): this is incarnation "
              f"{info.incarnation} (earlier journals: handle.incarnations())")
    if info.forked_from:
        print(f"forked    from {info.forked_from} at seq {info.forked_seq} (entries before it "
              "were copied)")
    if info.pause_requested and info.status in (RunStatus.RUNNING, RunStatus.WAITING,
                                                RunStatus.PENDING):
        print("pausing   at its next durable await (an operator paused it)")
    if info.error is not None:
        print(f"error     {info.error.type}: {info.error.message}")
    if info.blocked_reason:
        print(f"blocked   {info.blocked_reason}")
    print(f"created   {_fmt_time(info.created_at)}   updated {_fmt_time(info.updated_at)}")
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
            print(_journal(record.superseded))
    print()
    if history:
        print("current journal:")
    print(_journal(journal))


def _journal(entries: Sequence[JournalEntry]) -> str:
    rows = []
    for e in entries:
        err = e.error_info
        outcome = _short(e.output) if err is None else _short(f"{err.type}: {err.message}")
        rows.append((str(e.seq), e.kind, e.name, e.status, str(e.attempts), outcome,
                     _fmt_time(e.finished_at)))
    return _table(rows, ("SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "OUTCOME", "AT"))
