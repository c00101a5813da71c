"""The storage port: everything the engine asks of a database, and nothing more.

An adapter implements it with SQL only; the engine's logic never lives in an adapter. Writes
that must be ordered with later writes of the same run (journal entries) are *submitted*:
``put_entry`` enqueues at call time and returns a future, so the order in which a workflow makes
its durable calls is the order in which they commit, and concurrent runs share commits;
``write_entry`` is the same awaited at once, which lets an idle adapter skip its queue.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from perdure.records import ClaimedRun, IncarnationRow, JournalEntry, ResumeRow, RunRow
from perdure.storage.blobs import BlobStore
from perdure.storage.outbox_port import OutboxStore

__all__ = ["CallbackState", "FlowClaim", "FlowStats", "LimitDef", "LimitTake", "NewRun",
           "QueueDef", "RequestState", "RunQuery", "ScheduleFiring", "ScheduleRow", "Storage",
           "TalkListener", "WorkerRow", "wf_key"]


def wf_key(workflow: str, version: str) -> str:
    """What a worker can run: a workflow name at a version (unit separator between)."""
    return f"{workflow}\x1f{version}"


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create."""

    id: str
    workflow: str
    version: str
    input: str
    now: float
    parent_id: str | None = None
    parent_seq: int | None = None
    deadline: float | None = None
    #: the W3C trace context of the code that started the run (JSON text), so its executions
    #: continue that trace (see ``perdure.observe``)
    trace_context: str | None = None
    #: the run's tags (key, value), validated
    tags: tuple[tuple[str, str], ...] = ()
    #: ``pending`` (due now) or ``waiting`` until ``wake_at`` (a delay), with ``reason``
    status: str = "pending"
    wake_at: float | None = None
    reason: str | None = None
    #: flow control: its queue, partition key, priority (lower first), its key's share of the
    #: queue's round-robin (1 / weight), and the routing tokens it requires (see flow.routing)
    queue: str | None = None
    key: str | None = None
    priority: int = 0
    share: float = 1.0
    requires: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class QueueDef:
    """A queue's limits as the database keeps them (None: no such limit)."""

    name: str
    concurrency: int | None
    per_worker: int | None
    per_key: int | None
    rate_count: int | None
    rate_per: float | None
    weights: str | None  #: JSON object of key -> weight


@dataclass(frozen=True, slots=True)
class LimitDef:
    """A named limit as the database keeps it."""

    name: str
    concurrency: int | None
    rate_count: int | None
    rate_per: float | None


@dataclass(frozen=True, slots=True)
class FlowClaim:
    """What a claim from the lines (queues, routed runs) took, and when to look again."""

    runs: list[ClaimedRun]
    #: the earliest known time something more may become claimable there (a run falling due,
    #: a rate window with room); None: only an event (a slot freed, a start) can change it
    next_at: float | None


@dataclass(frozen=True, slots=True)
class LimitTake:
    """The outcome of taking a step's limits for one attempt."""

    granted: bool
    #: the limits that had no token (empty when granted)
    blocked: tuple[str, ...] = ()
    #: when to try again (a rate's next token, for this run's place in line); None: when a
    #: semaphore slot frees up (the release wakes the run)
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class FlowStats:
    """Raw rows for ``perdure queues``: per queue (name, concurrency, per_worker, per_key,
    rate_count, rate_per, in line, waiting, running, parked on a limit, oldest in line since,
    in line with no live worker), routed runs without a queue (in line, oldest since, with
    no live worker), and per limit (name, concurrency, rate_count, rate_per, slots held,
    grants in the window, parked, oldest parked since)."""

    queues: list[tuple[Any, ...]]
    routed: tuple[Any, ...]
    limits: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class RequestState:
    """A request sent into a run, as its caller sees it."""

    taken: bool  #: the run consumed it (a wait_for_request returned it)
    replied: bool
    reply: str | None  #: the encoded reply
    error: str | None  #: the rejection's reason (a reply is either this or ``reply``)


@dataclass(frozen=True, slots=True)
class CallbackState:
    """A callback token's row."""

    run_id: str
    seq: int  #: the journal seq of the ``perdure.callback()`` that made it
    completed: bool
    value: str | None  #: the encoded value it was completed with
    error: str | None  #: or the JSON ErrorInfo it was failed with


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A schedule as the storage holds it (times are unix seconds; see 0020_schedules.sql)."""

    id: str
    workflow: str
    version: str
    input: str  #: the encoded arguments of every run it starts
    cron: str
    timezone: str
    overlap: str
    catchup: float
    paused: bool
    next_due: float | None  #: the next slot not yet fired (None: no more)
    buffered_at: float | None  #: buffer_one: the slot waiting for the last run to finish
    last_run_id: str | None
    last_slot: float | None
    fired: int
    skipped_missed: int
    skipped_overlap: int
    revision: int  #: bumped by every write (compare-and-set)
    created_at: float
    updated_at: float
    #: the status of ``last_run_id`` when read (None: no such run)
    last_run_status: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleFiring:
    """What a firing (or a trigger) writes to its schedule besides the runs it starts: the
    new state, and the amounts added to the counters."""

    next_due: float | None
    buffered_at: float | None
    last_run_id: str | None
    last_slot: float | None
    fired: int = 0
    skipped_missed: int = 0
    skipped_overlap: int = 0


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A registered worker, as the storage holds it, with the runs it holds now."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    serves: tuple[str, ...]  #: the workflow keys it serves (``wf_key``)
    runs_held: int  #: runs it holds a lease on (status running)
    labels: tuple[str, ...] = ()  #: the routing tokens its labels offer (see flow.routing)


#: called when another process published something a reader may wait for: the run's id, or
#: None when anything may have changed (a reconnect lost notifications)
TalkListener = Callable[[str | None], None]


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs to list or count, as the storage filters them (validated by the engine).

    Runs come newest first: by ``created_at`` descending, then by id descending. A page starts
    after the key ``(before_at, before_id)`` (a cursor), so a row is never listed twice nor
    skipped however many runs are created meanwhile; ``created_before`` is the same bound
    with an empty id.
    """

    statuses: tuple[str, ...] = ()  #: any of these (empty: any status)
    workflow: str | None = None
    version: str | None = None
    parent_id: str | None = None
    queue: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  #: every one of these (key, value) pairs
    after_at: float = -math.inf  #: created at or after
    before_at: float = math.inf  #: with before_id: rows whose (created_at, id) is smaller
    before_id: str = ""
    limit: int = 100


class Storage(Protocol):
    """What the engine needs from a backend. Every fenced write raises ``LeaseLost`` when the
    writer's (worker, epoch) no longer owns the run."""

    #: True when the backend pushes wake-ups from other processes (``set_waker``), so the
    #: worker's polling of ``changed()`` is only a slow safety net
    pushes: bool
    @property
    def outbox(self) -> OutboxStore:
        """The outbox tables: emitted events, their delivery and the dead letters."""

    async def open(self) -> list[str]:
        """Connect and apply pending migrations; return those applied (``NNNN_name``).
        Raises ``StorageUnavailable`` when the database cannot be reached now (waiting may
        cure it) and ``InvalidConfiguration`` when it never will (bad path, credentials)."""

    async def close(self) -> None:
        """Flush pending writes and disconnect."""

    async def create_run(self, run: NewRun) -> bool:
        """Insert a pending run; False if a run with that id already exists."""

    async def get_run(self, run_id: str) -> RunRow | None:
        """One run, or None."""

    async def list_runs(self, query: RunQuery) -> list[RunRow]:
        """Up to ``query.limit`` runs matching ``query``, newest first (see :class:`RunQuery`).
        A tag or parent filter is served by its index, in order."""

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match ``query``, its ``limit`` aside."""

    async def set_tags(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                       tags: Mapping[str, str]) -> None:
        """Journal ``entry`` and make ``tags`` the run's tags (replacing all), atomically
        (fenced)."""

    async def prune_runs(self, cutoffs: Mapping[str, float], *, limit: int) -> int:
        """Delete up to ``limit`` finished runs, in one transaction, with every row of theirs
        in other tables (journal, history, signals, tags, ...): runs in a status of
        ``cutoffs`` last updated before its cutoff, whose parent (if any) is finished or gone.
        Returns how many runs it deleted."""

    async def count_prunable(self, cutoffs: Mapping[str, float]) -> int:
        """How many runs :meth:`prune_runs` would delete, in all batches."""

    async def take_lease(self, name: str, owner: str, *, now: float, until: float) -> bool:
        """Take (or renew) the named lease until ``until`` if it is free, lapsed or already
        ``owner``'s; whether ``owner`` holds it now."""

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the named lease up, if ``owner`` holds it."""

    async def claim(self, *, worker: str, keys: Sequence[str], limit: int, now: float,
                    lease_until: float, caps: Sequence[str] = (),
                    due_by: float | None = None) -> list[ClaimedRun]:
        """Take up to ``limit`` runnable runs whose workflow key is in ``keys`` and that are
        in no line (no queue, no routing selector); also recover lapsed runs whose selector
        ``caps`` (the worker's routing tokens) admits. ``due_by`` (default ``now``) takes
        parked runs due by then, a little ahead of time (see ``Worker``); the timers the
        claim fires are those due by ``now``."""

    async def next_wake(self, keys: Sequence[str], caps: Sequence[str] = ()) -> float | None:
        """The earliest time at which some run :meth:`claim` takes becomes claimable."""

    async def claim_flow(self, *, worker: str, keys: Sequence[str], queues: Sequence[str],
                         caps: Sequence[str], limit: int, clock: Callable[[], float],
                         lease: float, plain: bool = False,
                         plain_first: bool = False) -> FlowClaim:
        """Move due runs of ``queues`` (and routed runs ``caps`` admits) into their lines,
        then take up to ``limit`` from the lines within every queue's limits, counted
        exactly across workers (in one transaction that holds the queues' locks). The time
        is read from ``clock`` once the locks are held: a start enters a rate's window when it
        happens, not when the claim began waiting for the lock. Leases run ``lease`` s. With
        ``plain``, :meth:`claim` runs in the same transaction too, for the room left (or first,
        with ``plain_first``): one round trip instead of two."""

    async def create_debounced(self, run: NewRun) -> str:
        """Start ``run`` (waiting until ``run.wake_at``) or coalesce it into the run of the
        same workflow and key still gathering starts (it takes ``run``'s arguments and due
        time); returns the id of the run the start went to."""

    async def define_flow(self, queues: Sequence[QueueDef], limits: Sequence[LimitDef],
                          now: float) -> None:
        """Write queue and limit definitions (an existing one of the same name is replaced)."""

    async def take_limits(self, run_id: str, epoch: int, worker: str, *, seq: int,
                          names: Sequence[str], clock: Callable[[], float]) -> LimitTake:
        """For one attempt of step ``seq``: take a token of every limit in ``names`` (all or
        none; fenced). Without one, register the run as waiting on those limits (in arrival
        order) and say when to try again. The time is read from ``clock`` once the limits
        are locked (a grant is stamped when it is taken, not when the call began to wait)."""

    async def release_limits(self, run_id: str, *, seq: int | None, epoch: int,
                             now: float) -> None:
        """Release the semaphore slots of attempt ``seq`` (``seq`` None: those the run held at
        epochs before ``epoch``, left by a worker that died), and wake as many runs parked on
        those limits as slots are free, oldest first."""

    async def cancel_unstarted(self, run_id: str, *, error: str, now: float) -> bool:
        """End a cancelled run at once if it never started and stands in (or waits to enter)
        a queue's or routing line; whether it did."""

    async def flow_stats(self, now: float, live_since: float) -> FlowStats:
        """Queue, routing and limit figures for an operator (``perdure queues``); a worker
        is live if it beat since ``live_since``."""

    async def routable(self, requires: Sequence[str], live_since: float) -> bool:
        """Whether some live worker's labels admit the selector ``requires``."""

    async def claim_run(self, run_id: str, *, worker: str, keys: Sequence[str], now: float,
                        lease_until: float) -> ClaimedRun | None:
        """Take the run ``run_id`` if ``claim`` could take it now (its workflow key is in
        ``keys`` and it is runnable, or its lease lapsed); None otherwise (another worker
        holds it, it has ended or it is not due yet)."""

    async def count_due(self, keys: Sequence[str], now: float) -> int:
        """Parked runs with one of ``keys`` whose wake-up time has come (claimable now)."""

    async def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal in sequence order."""

    def put_entry(self, run_id: str, epoch: int, worker: str,
                  entry: JournalEntry) -> asyncio.Future[None]:
        """Insert or replace a journal entry (fenced); enqueued at call time."""

    async def write_entry(self, run_id: str, epoch: int, worker: str,
                          entry: JournalEntry) -> None:
        """``await put_entry(...)`` for a caller with no write of its own still queued (so
        nothing of its run needs ordering before this one): an adapter may commit it in the
        caller's task instead of handing it to a writer task. Raises ``LeaseLost`` when
        fenced off."""

    async def finish_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                         output: str | None, error: str | None, now: float) -> None:
        """Record a terminal (or blocked) status and release the run (fenced); a parent parked
        waiting for this run is woken in the same transaction."""

    async def park_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                       wake_at: float | None, now: float, error: str | None = None,
                       waiting_for: Sequence[str] = ()) -> None:
        """Release the run to ``status`` (waiting or pending) until ``wake_at`` or until one of
        ``waiting_for`` ("signal:NAME", "child:ID") happens (fenced). The wake condition is
        checked atomically with the park, so an event that committed meanwhile is not lost."""

    async def send_signal(self, run_id: str, name: str, payload: str, key: str | None,
                          now: float) -> str:
        """Buffer a signal and wake the run if it waits for it. Returns ``sent``,
        ``duplicate`` (same idempotency key), ``missing`` (no such run) or the terminal status
        of a finished run (nothing is written then)."""

    async def consume_signal(self, run_id: str, epoch: int, worker: str, *, seq: int,
                             name: str, now: float, retry: bool = False) -> str | None:
        """Take the oldest unconsumed signal ``name`` and journal its payload at ``seq`` in one
        transaction (fenced); None when there is none. With ``retry`` (an earlier call's
        outcome is unknown), a signal already consumed at ``seq`` is returned again."""

    async def start_child(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                          child: NewRun) -> None:
        """Create the child run (if its id is new) and journal ``entry``, atomically (fenced)."""

    async def request_cancel(self, run_id: str, now: float) -> list[str]:
        """Flag the run and its unfinished descendants for cancellation and wake the parked
        ones. Returns the ids flagged (empty: the run is finished or missing)."""

    async def cancel_flags(self, worker: str) -> list[str]:
        """Runs this worker drives whose cancellation was requested (by another process)."""

    async def heartbeat(self, worker: str, *, runs: Sequence[str], lease_until: float,
                        now: float, host: str, pid: int, pid_start: str | None,
                        serves: Sequence[str] = ()) -> dict[str, int]:
        """Renew, in one write, the leases of the ``runs`` the worker drives (and only those:
        a run it holds but no longer drives must lapse); returns those it still owns. The
        worker's registration (with the workflow keys it ``serves``) is renewed too."""

    async def register_worker(self, worker: str, *, host: str, pid: int,
                              pid_start: str | None, now: float,
                              serves: Sequence[str] = (), labels: Sequence[str] = ()) -> None:
        """Announce a live worker, the workflow keys it serves and the routing tokens its
        ``labels`` offer (PostgreSQL: also take its session advisory lock, which the server
        releases the instant the worker's connection dies)."""

    async def unregister_worker(self, worker: str) -> None:
        """Forget a worker that stopped cleanly."""

    async def dead_workers(self, me: str, host: str) -> list[str]:
        """Registered workers known to be dead right now: on this host, their pid is gone
        (or was recycled); on PostgreSQL, also any worker whose advisory lock is free."""

    def set_load(self, active_runs: Callable[[], int]) -> None:
        """Tell the adapter how many operations this process has in flight right now, so it
        can pick a cheaper path when there is nothing to batch (SQLite: commit without a
        thread hop)."""

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process may have made work runnable (PostgreSQL:
        on a NOTIFY; SQLite: on a datagram to the worker's socket, once it registered). The
        worker also polls ``changed()``, so a lost wake-up only delays."""

    async def expire_worker(self, worker: str) -> int:
        """A dead worker: make its runs claimable now and forget it. Returns runs freed."""

    async def admin_transition(self, run_id: str, *, from_status: str, to_status: str,
                               supersede: Sequence[int], new_generation: bool,
                               now: float) -> bool:
        """Operator move (resume), atomically and only if the run is still ``from_status``:
        fence out any owner, record how the run ended as a resume, move the ``supersede``
        journal entries to the history (out of the journal, never deleted), bump the run's
        generation if ``new_generation``, and requeue it. False if the run had moved."""

    async def load_history(self, run_id: str) -> list[tuple[ResumeRow, list[JournalEntry]]]:
        """The run's resumes, oldest first, each with the journal entries it superseded."""

    # -- long-lived runs and changing code --------------------------------------------------

    async def continue_run(self, run_id: str, epoch: int, worker: str, *, version: str,
                           input: str, now: float) -> None:
        """Continue-as-new, atomically (fenced): keep the ending incarnation (its arguments,
        version and whole journal) in the history, empty the journal, and requeue the run with
        ``input`` at ``version`` in a new generation and incarnation."""

    async def load_incarnations(self, run_id: str
                                ) -> list[tuple[IncarnationRow, list[JournalEntry]]]:
        """The incarnations that continued as new, oldest first, each with its journal."""

    async def fork_run(self, source_id: str, new_id: str, *, upto_seq: int,
                       now: float) -> bool:
        """Create run ``new_id`` with ``source_id``'s workflow, version and arguments, and copy
        the source's journal entries before ``upto_seq``, atomically. False if ``new_id``
        exists (nothing is written then)."""

    async def request_pause(self, run_id: str, now: float) -> str | None:
        """Pause the run: a pending or parked run becomes ``paused`` now, a running one is
        flagged (it parks as paused at its next durable await). Returns its status after, or
        None when the run is missing or finished (nothing is written then)."""

    async def unpause(self, run_id: str, now: float) -> bool:
        """Resume a paused run (claimable now) or withdraw a pause not yet reached. False if
        the run was neither paused nor asked to pause."""

    async def pause_flags(self, worker: str) -> list[str]:
        """Runs this worker drives whose pause was requested (by another process)."""

    async def stranded_runs(self, *, live_after: float, workflow: str | None,
                            limit: int) -> list[RunRow]:
        """Unfinished runs whose workflow and version no worker that heartbeat since
        ``live_after`` serves, newest first."""

    async def stranded_summary(self, *, live_after: float) -> list[tuple[str, str, int]]:
        """(workflow, version, how many) of the stranded runs."""

    async def served_keys(self, *, live_after: float) -> list[str]:
        """The workflow keys served by the workers that heartbeat since ``live_after``."""

    # -- the overview (the dashboard) -------------------------------------------------------
    #
    # Each served by an index over the rows it counts: none reads the finished history
    # outside its time window.

    async def unfinished_counts(self) -> dict[str, int]:
        """How many runs are in each unfinished status (pending, running, waiting, blocked,
        paused); a status with no run is left out."""

    async def run_activity(self, *, since: float, until: float,
                           bucket: float) -> list[tuple[str, int, int]]:
        """Runs started (``created_at``) and finished (``updated_at`` of completed, failed
        and cancelled runs) in [``since``, ``until``), counted per ``bucket`` seconds:
        (``started`` or the finished status, the bucket's index from ``since``, how many)."""

    async def list_workers(self, *, limit: int) -> list[WorkerRow]:
        """The registered workers, latest heartbeat first, at most ``limit``."""

    async def changed(self) -> bool:
        """Whether another process committed since the last call (a cheap cross-process
        wake-up for backends without push)."""

    async def database_time(self) -> float:
        """The database's clock now, in unix seconds: the reference every worker corrects
        its own clock to (one cheap round trip; the engine measures around it)."""

    # -- schedules ---------------------------------------------------------------------------
    #
    # Rows, fired by any worker: a firing is one transaction that moves the schedule on only
    # if its ``revision`` is still the one the firing was computed from, and creates the runs
    # (ids derived from the slots, so a slot can never start twice).

    async def insert_schedule(self, row: ScheduleRow) -> bool:
        """Create the schedule; False (writing nothing) if its id exists."""

    async def replace_schedule(self, row: ScheduleRow, revision: int) -> bool:
        """Replace the spec (workflow, version, input, cron, timezone, overlap, catchup) and
        ``next_due`` of schedule ``row.id`` if its revision is still ``revision`` (bumping
        it); False if it changed or is gone. Its state and counters are kept."""

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        """One schedule (with its last run's status), or None."""

    async def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by id."""

    async def pause_schedule(self, schedule_id: str, now: float) -> bool:
        """Pause the schedule (no slot fires while paused); False if there is none."""

    async def resume_schedule(self, schedule_id: str, next_due: float | None,
                              now: float) -> bool:
        """Unpause the schedule from ``next_due`` on (a schedule that was not paused keeps
        its own); False if there is none."""

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete the schedule (its runs stay); False if there was none."""

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        """Unpaused schedules with a slot due at ``now``, or with a buffered slot whose
        previous run has finished; earliest first, at most ``limit``."""

    async def next_schedule_due(self) -> tuple[float | None, bool]:
        """The earliest ``next_due`` of the unpaused schedules, and whether any of them has a
        buffered slot (which fires when a run finishes, not at a time)."""

    async def fire_schedule(self, schedule_id: str, revision: int, firing: ScheduleFiring,
                            runs: Sequence[NewRun], cancel: Sequence[str],
                            now: float) -> list[str] | None:
        """In one transaction, if the schedule's revision is still ``revision``: write
        ``firing`` (bumping the revision), create ``runs`` (an existing id is left alone) and
        request the cancellation of the ``cancel`` runs. Returns the ids flagged for
        cancellation, or None (nothing written) when the revision had moved."""

    async def insert_runs(self, runs: Sequence[NewRun]) -> list[str]:
        """Create pending runs in one transaction (existing ids are left alone); the ids
        created."""

    # -- talking to runs: events, streams, requests, callbacks ------------------------------
    #
    # Every write a workflow makes here is a journal entry plus a row clients read, committed
    # in one fenced transaction: a replay finds the entry and writes nothing, so a reader
    # never sees a write twice. Backends that push (``pushes``) notify ``listen_talk``
    # listeners of other processes at commit.

    async def set_event(self, run_id: str, epoch: int, worker: str, entry: JournalEntry, *,
                        key: str, value: str, now: float) -> None:
        """Journal ``entry`` and make ``value`` the current value of event ``key``,
        atomically (fenced)."""

    async def get_events(self, run_id: str, key: str | None) -> tuple[str | None,
                                                                      dict[str, str]]:
        """The run's status (None: no such run) and its events' current values (only
        ``key``'s when given)."""

    async def write_stream(self, run_id: str, epoch: int, worker: str, entry: JournalEntry, *,
                           stream: str, position: int, value: str | None,
                           now: float) -> None:
        """Journal ``entry`` and store item ``position`` of ``stream`` (``value`` None: the
        end marker), atomically (fenced). An item already at that position is kept."""

    async def append_stream(self, run_id: str, epoch: int, worker: str, *, stream: str,
                            seq: int, value: str, now: float) -> int:
        """Store ``value`` after the last item of ``stream`` without a journal entry (fenced;
        ``seq`` is the step that wrote it): what a step streams live, at least once. Its
        position."""

    async def read_stream(self, run_id: str, stream: str, offset: int, limit: int
                          ) -> tuple[str | None, list[tuple[int, str | None]]]:
        """The run's status (None: no such run), read first, then up to ``limit`` items of
        ``stream`` from ``offset`` in position order (a None value is the end marker)."""

    async def send_request(self, run_id: str, request_id: str, name: str, payload: str,
                           now: float) -> str:
        """Buffer a request and wake the run if it waits for it. Returns ``sent``,
        ``duplicate`` (``request_id`` exists: a retried send), ``missing`` or the terminal
        status of a finished run (nothing is written then)."""

    async def consume_request(self, run_id: str, epoch: int, worker: str, *, seq: int,
                              name: str, now: float) -> str | None:
        """Take the oldest pending request ``name`` and journal it at ``seq`` in one
        transaction (fenced); returns the entry's output, ``{"id": ..., "payload": ...}``
        JSON text, or None when there is none."""

    async def reply_request(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                            *, request_id: str, reply: str | None, error: str | None,
                            now: float) -> None:
        """Journal ``entry`` and record the reply (or the rejection ``error``) on the request,
        atomically (fenced)."""

    async def request_state(self, run_id: str, request_id: str
                            ) -> tuple[str | None, RequestState | None]:
        """The run's status (None: no such run) and the request (None: no such request)."""

    async def withdraw_request(self, run_id: str, request_id: str) -> bool:
        """Delete the request if the run has not taken it yet; whether it was deleted."""

    async def create_callback(self, run_id: str, epoch: int, worker: str,
                              entry: JournalEntry, *, token: str, now: float) -> None:
        """Journal ``entry`` and create callback ``token``, atomically (fenced)."""

    async def callback_state(self, token: str) -> CallbackState | None:
        """The callback's row, or None."""

    async def complete_callback(self, token: str, *, value: str | None, error: str | None,
                                now: float) -> tuple[str, str | None]:
        """Complete (``value``) or fail (``error``) a callback once and wake its run if it
        waits for it. Returns (``ok``, ``already`` (completed before: nothing written),
        ``missing`` or the terminal status of its finished run; its run id)."""

    async def listen_talk(self, listener: TalkListener) -> None:
        """Call ``listener`` whenever another process publishes something to a run (an
        event, a stream item, a reply, the run finishing). Backends without push never
        call it; readers then poll ``data_version()``."""

    async def data_version(self) -> int:
        """A number that changes whenever another process commits (SQLite: ``PRAGMA
        data_version``); constant on backends that push."""

    def blobs(self) -> BlobStore:
        """A blob store on a table of this same database (``Engine(blobs="database")``)."""
