"""Records that cross the boundary between the engine, its storage and its users.

They are frozen dataclasses so a new field never breaks a signature.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["Activity", "ClaimedRun", "DeadLetter", "ErrorInfo", "Incarnation", "IncarnationRow",
           "JournalEntry", "OutboxEvent", "OutboxStats", "ResumeRecord", "ResumeRow", "RunInfo",
           "RunPage", "RunRow", "RunStatus", "WorkerInfo", "bound_text", "failed_compensations",
           "run_error", "selector_of"]

#: the longest error message and traceback text stored (characters); longer ones keep their
#: head and tail. A 5 MB exception message would otherwise be stored twice (the traceback
#: ends with it) in every failed attempt's journal entry.
MESSAGE_LIMIT = 16 * 1024
TRACEBACK_LIMIT = 32 * 1024


def bound_text(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its head and tail around a note
    of how many characters were cut (the result has about ``limit`` characters)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 64, 2)
    head, tail = keep // 2, keep - keep // 2
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut:,} characters cut ...]\n{text[len(text) - tail:]}"


class RunStatus(StrEnum):
    """The life cycle of a run."""

    PENDING = "pending"      #: created, not yet claimed by a worker
    RUNNING = "running"      #: leased to a worker that drives it
    WAITING = "waiting"      #: parked until a due time or an event; no worker holds it
    COMPLETED = "completed"  #: returned a result
    FAILED = "failed"        #: raised; compensations (if any) have run
    CANCELLED = "cancelled"  #: cancelled; compensations (if any) have run
    BLOCKED = "blocked"      #: stopped for an operator (non-determinism); fix, then resume
    PAUSED = "paused"        #: parked by an operator (``engine.pause``) until ``engine.resume``

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
        """Describe ``exc`` (the traceback is kept as text: the type may not exist elsewhere).

        The message and the traceback are bounded (:data:`MESSAGE_LIMIT`,
        :data:`TRACEBACK_LIMIT`): a longer one keeps its head and tail and says how much was
        cut.
        """
        import traceback

        t = type(exc)
        name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        return cls(name, bound_text(_message(exc, name), MESSAGE_LIMIT),
                   bound_text("".join(traceback.format_exception(exc)), TRACEBACK_LIMIT))

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
    #: key generation: bumped by a resume after a failure and by a continue-as-new
    generation: int = 0
    #: how many times the run continued as new
    incarnation: int = 0
    #: an operator asked to pause the run (it parks at its next durable await)
    pause_requested: bool = False
    #: the run this one is a fork of, and the seq from which it executed again
    forked_from: str | None = None
    forked_seq: int | None = None
    #: the run's tags, a JSON object (None: no tags)
    tags: str | None = None
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
    #: when the run became claimable (created, due, woken), in the database's time
    wake_at: float | None = None
    #: the trace context stored by the run's start (JSON text of a W3C carrier), if any
    trace_context: str | None = None
    #: an operator asked to pause the run: it parks at its next durable await
    pause_requested: bool = False


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
    #: set (with ``output`` and ``error`` left out) when the process that read the entry cannot
    #: read its payload: why, e.g. ``encrypted (key 'k1')``
    unreadable: str | None = None

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
    #: how many times the run was resumed after it failed or continued as new; steps it
    #: executes now have idempotency keys of this generation (see ``step_key()``)
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
    #: set (with ``error`` left out) when this process cannot read the run's error: why,
    #: e.g. ``encrypted (key 'k1')``
    unreadable: str | None = None
    #: how many times the run continued as new (``ContinueAsNew``); see
    #: ``WorkflowHandle.incarnations()``
    incarnation: int = 0
    #: an operator paused the run (status ``paused``) or asked to (it parks at its next
    #: durable await)
    pause_requested: bool = False
    #: the run this one was forked from (``engine.fork``), and the seq from which it executed
    #: again (the entries before it were copied)
    forked_from: str | None = None
    forked_seq: int | None = None
    #: the run's tags (``engine.start(..., tags=)`` and ``perdure.set_tags()``)
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
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
                   waiting_for=waiting_for, deadline=_dt(row.deadline),
                   incarnation=row.incarnation, pause_requested=bool(row.pause_requested),
                   forked_from=row.forked_from, forked_seq=row.forked_seq,
                   tags=json.loads(row.tags) if row.tags else {}, queue=row.queue,
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



@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event a workflow emitted with ``perdure.emit``, as the outbox sink receives it (and
    as ``engine.outbox.pending()`` lists it).

    ``id`` is stable (the emitting run's id and the call's sequence number): it is the same on
    every delivery attempt, so a receiver deduplicates by it. ``position`` grows with every
    emit; a key's events are delivered in position order. ``attempt`` is the delivery attempt
    this is (1 for the first); ``last_error`` says why the previous one failed.
    """

    id: str
    name: str
    key: str | None
    payload_json: str
    run_id: str
    position: int
    created_at: float
    attempt: int = 1
    last_error: str | None = None
    next_attempt_at: float | None = None

    @property
    def payload(self) -> Any:
        """The payload as plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
        return json.loads(self.payload_json)

    @property
    def created(self) -> datetime:
        """When the event was emitted (UTC)."""
        return datetime.fromtimestamp(self.created_at, UTC)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that failed every delivery attempt: kept until it is replayed or purged."""

    event: OutboxEvent
    attempts: int
    error: str
    failed_at: float

    @property
    def failed(self) -> datetime:
        """When it was moved to the dead letters (UTC)."""
        return datetime.fromtimestamp(self.failed_at, UTC)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counts for monitoring the outbox: the database's (shared by every process) and this
    process's publisher's (since the engine opened)."""

    pending: int  #: events not yet delivered (the backlog)
    retrying: int  #: of those, events whose last delivery attempt failed
    dead: int  #: events in the dead letters
    oldest_pending_at: float | None  #: emit time of the oldest undelivered event
    leader: str | None  #: the worker id of the publisher holding the lease, if any
    delivered: int = 0  #: delivered by this process
    failed_attempts: int = 0  #: failed delivery attempts made by this process
    dead_lettered: int = 0  #: events this process moved to the dead letters


@dataclass(frozen=True, slots=True)
class IncarnationRow:
    """An incarnation that continued as new, as the storage holds it."""

    id: int
    generation: int
    version: str
    input: str
    ended_at: float


@dataclass(frozen=True, slots=True)
class Incarnation:
    """One ended incarnation of a long-lived run: ``raise ContinueAsNew(...)`` ended it and
    started the next with new arguments and a fresh journal. Kept for audit (replay never
    reads it again)."""

    number: int                          #: 0 for the run's first incarnation
    generation: int                      #: its key generation (step keys ``RUN:SEQ:gN``)
    version: str                         #: the workflow version it ran
    input: str                           #: its arguments, as encoded JSON text
    ended_at: datetime
    journal: tuple[JournalEntry, ...]    #: its journal, as it was when it continued

    @classmethod
    def from_rows(cls, number: int, row: IncarnationRow,
                  journal: Sequence[JournalEntry]) -> Incarnation:
        """Build from the storage rows."""
        ended = _dt(row.ended_at)
        assert ended is not None
        return cls(number, row.generation, row.version, row.input, ended, tuple(journal))


class RunPage(list[RunInfo]):
    """One page of ``engine.list_runs()``: a list of runs, newest first, and the cursor of
    the next page.

    It is a plain list (code that treats ``list_runs()`` as a list keeps working);
    ``next_cursor`` is None when no run follows this page, else pass it back as
    ``list_runs(..., cursor=page.next_cursor)`` with the same filters.
    """

    def __init__(self, runs: Iterable[RunInfo] = (), next_cursor: str | None = None) -> None:
        super().__init__(runs)
        #: the cursor of the next page (None: this is the last one)
        self.next_cursor = next_cursor

    @property
    def runs(self) -> list[RunInfo]:
        """The runs of this page (a copy, as a plain list)."""
        return list(self)

    def __repr__(self) -> str:
        return f"RunPage({list.__repr__(self)}, next_cursor={self.next_cursor!r})"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A registered worker, as ``engine.workers()`` reports it."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime  #: its last heartbeat (database time)
    #: workflow name to the versions it serves
    serves: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    runs_held: int = 0  #: runs it holds a lease on now
    #: its heartbeat is recent (three leases): a worker that is not live died or is stuck,
    #: and its runs are taken over once its leases lapse
    live: bool = True
    #: the labels it advertises for routing (``Engine(labels=...)``)
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Activity:
    """Runs started and finished per time bucket (``engine.activity()``): bucket ``i``
    covers ``[since + i * bucket, since + (i + 1) * bucket)``."""

    since: datetime
    bucket: float  #: seconds
    started: tuple[int, ...]
    completed: tuple[int, ...]
    failed: tuple[int, ...]
    cancelled: tuple[int, ...]

    @property
    def buckets(self) -> int:
        """How many buckets the window has."""
        return len(self.started)
