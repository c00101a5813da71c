"""Records that cross the boundary between the engine, its storage and its users.

They are frozen dataclasses so a new field never breaks a signature.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

__all__ = ["ClaimedRun", "ErrorInfo", "JournalEntry", "ResumeRecord", "ResumeRow", "RunInfo",
           "RunRow", "RunStatus", "failed_compensations", "run_error", "selector_of"]


class RunStatus(StrEnum):
    """The life cycle of a run."""

    PENDING = "pending"      #: created, not yet claimed by a worker
    RUNNING = "running"      #: leased to a worker that drives it
    WAITING = "waiting"      #: parked until a due time or an event; no worker holds it
    COMPLETED = "completed"  #: returned a result
    FAILED = "failed"        #: raised; compensations (if any) have run
    CANCELLED = "cancelled"  #: cancelled; compensations (if any) have run
    BLOCKED = "blocked"      #: stopped for an operator (non-determinism); fix, then resume

    @property
    def terminal(self) -> bool:
        """Whether the run can never change again (blocked is not terminal: it can resume)."""
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A recorded exception: its type's name, message and traceback text."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Describe ``exc`` (the traceback is kept as text: the type may not exist elsewhere)."""
        import traceback

        t = type(exc)
        name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        return cls(name, _message(exc, name), "".join(traceback.format_exception(exc)))

    def to_json(self) -> str:
        """Encode for the journal."""
        return json.dumps({"type": self.type, "message": self.message, "tb": self.traceback},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> ErrorInfo | None:
        """Decode what :meth:`to_json` wrote (None stays None)."""
        if text is None:
            return None
        d = json.loads(text)
        return cls(d.get("type", "Error"), d.get("message", ""), d.get("tb", ""))


def run_error(error: ErrorInfo, failed_compensations: Sequence[str] = ()) -> str:
    """What a failed or cancelled run records as its error: the error (``ErrorInfo`` JSON)
    and, when some compensations exhausted their attempts, the names of those steps."""
    if not failed_compensations:
        return error.to_json()
    data = json.loads(error.to_json())
    data["failed_compensations"] = list(failed_compensations)
    return json.dumps(data, separators=(",", ":"))


def failed_compensations(error: str | None) -> tuple[str, ...]:
    """The steps whose compensation failed, from a run's recorded error (see
    :func:`run_error`)."""
    if not error or not error.startswith("{"):
        return ()
    try:
        names = json.loads(error).get("failed_compensations") or ()
    except ValueError:
        return ()
    return tuple(str(n) for n in names)


def _message(exc: BaseException, name: str) -> str:
    """``str(exc)``, or, when the exception's own ``__str__`` fails (user code can raise
    anything), its type name and ``repr``: describing an error must never raise another."""
    try:
        text = str(exc)
        if isinstance(text, str):
            return text
    except Exception:
        pass
    try:
        shown = repr(exc)
    except Exception:
        shown = object.__repr__(exc)
    return f"<{name}: str() failed> {shown}"


def selector_of(tokens: Sequence[str] | None) -> dict[str, str] | None:
    """A run's routing selector from the tokens stored for it: ``KEY`` (the label with any
    value, shown ``"*"``) or ``KEY<US>VALUE``."""
    if not tokens:
        return None
    out: dict[str, str] = {}
    for token in tokens:
        key, _, value = token.partition("\x1f")
        out[key] = value or "*"
    return out


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as the storage holds it (timestamps are unix seconds)."""

    id: str
    workflow: str
    version: str
    status: str
    input: str
    output: str | None
    error: str | None
    epoch: int
    owner: str | None
    lease_until: float | None
    wake_at: float | None
    parent_id: str | None
    parent_seq: int | None
    deadline: float | None
    cancel_requested: bool
    created_at: float
    updated_at: float
    #: how many times an operator resumed the run after it failed (see ``step_key()``)
    generation: int = 0
    #: flow control: queue, partition key, priority and routing tokens (see perdure.flow)
    queue: str | None = None
    partition_key: str | None = None
    priority: int = 0
    requires: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run a worker has just claimed, at the epoch that fences its writes."""

    id: str
    workflow: str
    version: str
    input: str
    epoch: int
    parent_id: str | None
    deadline: float | None
    cancel_requested: bool
    created_at: float
    #: taken from a worker that died or lost its lease (not from pending or waiting): the
    #: step it was executing may have had its side effect, unjournaled
    recovered: bool = False
    #: resumes after a failure so far: part of the idempotency keys of the steps it executes
    generation: int = 0


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One durable operation of a run, as recorded.

    ``kind`` is ``step``, ``compensation``, ``now``, ``uuid``, ``random``, ``sleep``, ``signal``,
    ``child`` ...; ``status`` is ``completed``, ``failed`` or ``retrying`` (a step between
    attempts) or ``waiting``. ``output`` and ``error`` hold the encoded outcome.
    """

    seq: int
    kind: str
    name: str
    status: str
    attempts: int = 0
    output: str | None = None
    error: str | None = None
    due_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def error_info(self) -> ErrorInfo | None:
        """The recorded error, decoded."""
        return ErrorInfo.from_json(self.error)

    @property
    def started(self) -> datetime | None:
        """When the operation first executed (UTC)."""
        return _dt(self.started_at)

    @property
    def finished(self) -> datetime | None:
        """When the operation's outcome was recorded (UTC)."""
        return _dt(self.finished_at)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What ``handle.status()`` reports about a run."""

    id: str
    workflow: str
    version: str
    status: RunStatus
    error: ErrorInfo | None
    created_at: datetime
    updated_at: datetime
    parent_id: str | None = None
    blocked_reason: str | None = None
    cancel_requested: bool = False
    #: steps whose compensation exhausted its attempts (a failed or cancelled run whose
    #: rollback is incomplete: someone must undo these by hand)
    failed_compensations: tuple[str, ...] = ()
    #: how many times the run was resumed after it failed; steps it executes now have
    #: idempotency keys of this generation (see ``step_key()``)
    generation: int = 0
    #: the run's arguments, as the codec recorded them (JSON text keyed by parameter)
    input: str | None = None
    #: a completed run's result, as the codec recorded it (JSON text)
    output: str | None = None
    #: when a waiting run wakes at the latest (its next due timer, retry or timeout)
    wake_at: datetime | None = None
    #: what a waiting run waits for besides its due time (a signal, a child)
    waiting_for: str | None = None
    #: when the run is cancelled if it has not finished
    deadline: datetime | None = None
    #: the queue it runs in, its partition key and its priority (lower first)
    queue: str | None = None
    key: str | None = None
    priority: int = 0
    #: the labels a worker needs to take it (``"*"``: the label with any value)
    requires: dict[str, str] | None = None
    #: no live worker's labels admit ``requires``: it waits until such a worker starts
    #: (filled in by ``status()``; False when not checked)
    unroutable: bool = False

    @classmethod
    def from_row(cls, row: RunRow) -> RunInfo:
        """Build from the storage row."""
        status = RunStatus(row.status)
        err: ErrorInfo | None = None
        reason: str | None = None
        undone: tuple[str, ...] = ()
        waiting_for: str | None = None
        if row.error is not None:
            # The column holds a JSON error for failed and cancelled runs, the reason for a
            # blocked one, and what a waiting run waits for.
            if status is RunStatus.BLOCKED:
                reason = row.error
            elif status in (RunStatus.FAILED, RunStatus.CANCELLED):
                err = ErrorInfo.from_json(row.error)
                undone = failed_compensations(row.error)
            elif status is RunStatus.WAITING:
                waiting_for = row.error
        created = _dt(row.created_at)
        updated = _dt(row.updated_at)
        assert created is not None and updated is not None
        return cls(row.id, row.workflow, row.version, status, err, created, updated,
                   row.parent_id, reason, row.cancel_requested, undone, row.generation,
                   input=row.input,
                   output=row.output if status is RunStatus.COMPLETED else None,
                   wake_at=_dt(row.wake_at) if status is RunStatus.WAITING else None,
                   waiting_for=waiting_for, deadline=_dt(row.deadline), queue=row.queue,
                   key=row.partition_key, priority=row.priority,
                   requires=selector_of(row.requires))


@dataclass(frozen=True, slots=True)
class ResumeRow:
    """A resume as the storage holds it: how the run had ended, and when it was resumed."""

    id: int
    generation: int
    status: str
    error: str | None
    ended_at: float
    resumed_at: float


@dataclass(frozen=True, slots=True)
class ResumeRecord:
    """One resume of a run, kept for audit: how the run had ended before it and the journal
    entries it superseded.

    Resuming a failed run starts a new ``generation``: its failed step, everything after it,
    its compensations and the steps they undid leave the journal (replay never reads them
    again) and are kept here, in ``superseded``. Resuming a blocked run supersedes nothing.
    """

    generation: int                         #: the generation that ended
    status: RunStatus                       #: how it ended: failed (or cancelled), or blocked
    error: ErrorInfo | None                 #: the failure, for a failed run
    blocked_reason: str | None              #: the reason, for a blocked run
    failed_compensations: tuple[str, ...]   #: steps whose compensation had failed
    ended_at: datetime
    resumed_at: datetime
    superseded: tuple[JournalEntry, ...]    #: the entries the resume took out of the journal

    @classmethod
    def from_rows(cls, row: ResumeRow, superseded: Sequence[JournalEntry]) -> ResumeRecord:
        """Build from the storage rows."""
        status = RunStatus(row.status)
        blocked = status is RunStatus.BLOCKED
        ended, resumed = _dt(row.ended_at), _dt(row.resumed_at)
        assert ended is not None and resumed is not None
        return cls(row.generation, status, None if blocked else ErrorInfo.from_json(row.error),
                   row.error if blocked else None,
                   () if blocked else failed_compensations(row.error), ended, resumed,
                   tuple(superseded))

