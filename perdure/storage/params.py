"""Bind parameters shared by the adapters: one spelling of a run and a journal entry as SQL
parameters, and the fencing error."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from perdure.errors import LeaseLost
from perdure.records import ClaimedRun, IncarnationRow, JournalEntry, ResumeRow
from perdure.storage.port import NewRun, wf_key

__all__ = ["entry_params", "history_rows", "incarnation_rows", "lost", "new_run_params",
           "timers_due"]


def lost(run_id: object, epoch: object) -> LeaseLost:
    """The error of a fenced-off write."""
    return LeaseLost(f"run {run_id!r} is no longer owned at epoch {epoch}")


def new_run_params(run: NewRun) -> dict[str, Any]:
    """Parameters of ``insert_run`` (``requires`` as a list: SQLite stores it as JSON)."""
    in_line = run.status == "pending" and (run.queue is not None or bool(run.requires))
    # A due run of no line is claimed by its due time (now); a due queued or routed run goes
    # straight into its line (no due time); a delayed one waits for its due time.
    wake_at = None if in_line else float(run.now if run.wake_at is None else run.wake_at)
    return {"id": run.id, "workflow": run.workflow, "version": run.version,
            "wf_key": wf_key(run.workflow, run.version), "input": run.input,
            "now": float(run.now), "parent_id": run.parent_id, "parent_seq": run.parent_seq,
            "deadline": run.deadline, "trace_context": run.trace_context,
            "status": run.status, "wake_at": wake_at,
            "reason": run.reason, "queue": run.queue, "key": run.key,
            "priority": run.priority, "share": float(run.share),
            "requires": list(run.requires) if run.requires else None,
            "debounce": False,
            "tags": json.dumps(dict(run.tags), separators=(",", ":")) if run.tags else None,
            "tag_keys": [k for k, _ in run.tags], "tag_values": [v for _, v in run.tags]}


def entry_params(run_id: str, epoch: int, worker: str, entry: JournalEntry) -> dict[str, Any]:
    """Parameters of ``put_entry``."""
    return {"run_id": run_id, "epoch": epoch, "worker": worker, "seq": entry.seq,
            "kind": entry.kind, "name": entry.name, "status": entry.status,
            "attempts": entry.attempts, "output": entry.output, "error": entry.error,
            "due_at": entry.due_at, "started_at": entry.started_at,
            "finished_at": entry.finished_at}


def history_rows(resumes: Sequence[Sequence[Any]], entries: Sequence[Sequence[Any]]
            ) -> list[tuple[ResumeRow, list[JournalEntry]]]:
    """Pair the rows of ``load_resumes`` with those of ``load_superseded`` (resume id first,
    then a journal entry's columns)."""
    by_resume: dict[int, list[JournalEntry]] = {}
    for r in entries:
        by_resume.setdefault(int(r[0]), []).append(JournalEntry(*r[1:]))
    return [(ResumeRow(*r), by_resume.get(int(r[0]), [])) for r in resumes]


def incarnation_rows(incarnations: Sequence[Sequence[Any]], entries: Sequence[Sequence[Any]]
                     ) -> list[tuple[IncarnationRow, list[JournalEntry]]]:
    """Pair the rows of ``load_incarnations`` with those of ``load_incarnation_entries``."""
    by_id: dict[int, list[JournalEntry]] = {}
    for r in entries:
        by_id.setdefault(int(r[0]), []).append(JournalEntry(*r[1:]))
    return [(IncarnationRow(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4])),
             by_id.get(int(r[0]), [])) for r in incarnations]


def timers_due(runs: Sequence[ClaimedRun], now: float) -> list[str]:
    """The runs a claim just took whose due timers it journals as fired (batch firing): not
    one recovered from a dead worker, nor one with a cancel or a pause to deliver at the
    timer, nor one past its deadline (the replay delivers those at the timer). PostgreSQL's
    claim applies the same condition in SQL."""
    return [r.id for r in runs
            if not r.recovered and not r.cancel_requested and not r.pause_requested
            and (r.deadline is None or r.deadline > now)]
