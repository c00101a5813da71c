"""Perdure's exceptions.

Every error Perdure raises on purpose is a :class:`PerdureError`::

    PerdureError
    ├── InvalidConfiguration      bad engine URL, table prefix, option or decorator argument
    │   └── InvalidCursor         a list_runs cursor that is not one, or is another query's
    ├── SerializationError        a value the typed codec cannot encode or decode
    │   └── PayloadTooLarge       a payload over ``Engine(max_payload=...)``
    ├── PayloadUnavailable        a stored payload this process cannot read back
    │   ├── DecryptionError       its key is missing or wrong (names the key id)
    │   └── BlobMissing           the blob it was offloaded to is not in the blob store
    ├── UnknownWorkflowError      a workflow name or function the engine does not know
    ├── RunNotFound               no run with that id
    ├── RunFinished               the run already reached a terminal state (signal to a done run)
    ├── ScheduleNotFound          no schedule with that id
    ├── NonDeterminismError       replay asked for a different operation than the journal holds
    │   └── ReplayMismatch        ``perdure.testing.replay``: the code diverges from a journal
    ├── JournalFormatError        a journal file that is not a Perdure export of a known version
    ├── NotInWorkflow             an in-workflow function (now(), a step, ...) called outside one
    ├── StorageUnavailable        the database cannot take the call now (connection, lock, disk)
    ├── StepFailed                inside a workflow: a step exhausted its attempts
    ├── WorkflowFailed            from ``handle.result()``: the run failed
    │   └── RunCancelled          from ``handle.result()``: the run was cancelled
    ├── RunBlocked                from ``handle.result()``: the run is blocked (non-determinism)
    ├── Cancelled                 inside a workflow: the run is being cancelled
    ├── SignalTimeout             inside a workflow: ``wait_for_signal`` timed out
    ├── ChildFailed               inside a workflow: a child workflow failed
    ├── StreamClosed              a write to (or reopening of) a stream the workflow closed
    ├── EventTimeout              from ``handle.get_event()``: the key was not set in time
    ├── RequestTimeout            ``handle.request()``: no reply in time; inside a workflow:
    │                             ``wait_for_request`` saw no request in time
    ├── RequestRejected           from ``handle.request()``: the workflow rejected the request
    ├── CallbackNotFound          ``complete_callback`` / ``fail_callback``: no such token
    ├── CallbackAlreadyCompleted  a second completion of a (single-use) callback token
    ├── CallbackTimeout           inside a workflow: ``cb.wait`` timed out
    ├── CallbackFailed            inside a workflow: the callback was failed from outside
    ├── WebhookRejected           from ``WebhookSink``: the receiver did not answer 2xx
    ├── InvalidSignature          from ``verify_webhook``: a received webhook is not authentic
    └── LeaseLost                 internal: this worker no longer owns the run (fencing)

    NonRetryable                  raised *by a step* to stop retrying at once (an Exception,
                                  deliberately not a PerdureError: it is user vocabulary)

``EventTimeout`` and ``RequestTimeout`` are also subclasses of the builtin ``TimeoutError``,
which ``handle.result(timeout=...)`` raises.

``StepFailed``, ``WorkflowFailed``, ``ChildFailed`` and ``CallbackFailed`` carry the original
cause's type name, message and traceback text, because the cause itself may be a type that
cannot travel through the journal (it may not even be importable on the worker that reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BlobMissing",
    "CallbackAlreadyCompleted",
    "CallbackFailed",
    "CallbackNotFound",
    "CallbackTimeout",
    "Cancelled",
    "ChildFailed",
    "DecryptionError",
    "EventTimeout",
    "InvalidConfiguration",
    "InvalidCursor",
    "InvalidSignature",
    "JournalFormatError",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "PayloadTooLarge",
    "PayloadUnavailable",
    "PerdureError",
    "ReplayMismatch",
    "RequestRejected",
    "RequestTimeout",
    "RunBlocked",
    "RunCancelled",
    "RunFinished",
    "RunNotFound",
    "ScheduleNotFound",
    "SerializationError",
    "SignalTimeout",
    "StepFailed",
    "StorageUnavailable",
    "StreamClosed",
    "UnknownWorkflowError",
    "WebhookRejected",
    "WorkflowFailed",
]


class PerdureError(Exception):
    """Base class of every error Perdure raises on purpose."""


class InvalidConfiguration(PerdureError):
    """An engine URL, table prefix, option or decorator argument is not valid."""


class InvalidCursor(InvalidConfiguration):
    """A ``list_runs`` cursor that is not one, or that another query returned (other filters):
    a cursor only continues the query that made it."""


class SerializationError(PerdureError):
    """A value cannot be encoded (or decoded) by the typed codec."""


class PayloadTooLarge(SerializationError):
    """A payload (an argument, a result, a signal payload) is larger than the engine's
    ``max_payload``. ``what`` names it, ``size`` and ``limit`` are in bytes (UTF-8 JSON)."""

    def __init__(self, message: str, *, what: str = "", size: int | None = None,
                 limit: int | None = None) -> None:
        super().__init__(message)
        self.what = what
        self.size = size
        self.limit = limit


class PayloadUnavailable(PerdureError):
    """A stored payload cannot be read back by this process: it is encrypted with a key this
    engine lacks, offloaded to a blob that is missing, or damaged. Inside a run this blocks
    the run (a deployment or infrastructure matter, never the workflow's failure)."""


class DecryptionError(PayloadUnavailable):
    """A payload is encrypted with key ``key_id``, which this engine does not have (or which
    does not decrypt it: another key under the same id, or altered data)."""

    def __init__(self, message: str, *, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


class BlobMissing(PayloadUnavailable):
    """A payload was offloaded to blob ``key`` (its content hash), which the blob store does
    not hold (or holds damaged)."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class UnknownWorkflowError(PerdureError):
    """The workflow is not registered on this engine (or no such name exists)."""


class RunNotFound(PerdureError):
    """No run exists with the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class ScheduleNotFound(PerdureError):
    """No schedule exists with the given id."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule with id {schedule_id!r}")
        self.schedule_id = schedule_id


class RunFinished(PerdureError):
    """The run has already reached a terminal state, so the request cannot apply."""

    def __init__(self, run_id: str, status: str, detail: str = "") -> None:
        super().__init__(f"run {run_id!r} is already {status}" + (f": {detail}" if detail
                                                                   else ""))
        self.run_id = run_id
        self.status = status


class NonDeterminismError(PerdureError):
    """Replay asked for an operation that differs from the one the journal recorded."""


class ReplayMismatch(NonDeterminismError):
    """The current code does not replay an exported journal: raised by
    ``perdure.testing.replay`` with the run, the seq and what differs."""

    def __init__(self, run_id: str, seq: int | None, reason: str, *, path: str = "") -> None:
        where = f" at seq {seq}" if seq is not None else ""
        source = f" (from {path})" if path else ""
        super().__init__(f"run {run_id!r}{source} does not replay{where}: {reason}")
        self.run_id = run_id
        self.seq = seq
        self.reason = reason
        self.path = path


class JournalFormatError(PerdureError):
    """A journal file is not a Perdure export, or has a format version this Perdure cannot
    read."""


class NotInWorkflow(PerdureError):
    """An in-workflow function was called outside a running workflow (or step)."""


class StorageUnavailable(PerdureError):
    """The database cannot take the call now: it cannot be reached, the connection broke
    mid-operation and the operation could not be retried safely, a lock is held too long (by
    another process, even a frozen one), the disk is full, the file system is read-only. Waiting
    may cure it; the driver's exception is ``__cause__``. Nothing is known to be lost: fenced
    writes are either committed or not. Inside a worker it never fails a run: the run's writes
    are retried while its lease holds, then the run is let go and claimed again later."""


class LeaseLost(PerdureError):
    """This worker no longer owns the run: another worker claimed it (its epoch is newer)."""


class _CarriesCause(PerdureError):
    """An error that describes a cause by its type name, message and traceback text."""

    def __init__(self, message: str, *, cause_type: str, cause_message: str,
                 cause_traceback: str = "") -> None:
        super().__init__(message)
        self.cause_type = cause_type
        self.cause_message = cause_message
        self.cause_traceback = cause_traceback


class StepFailed(_CarriesCause):
    """Raised inside a workflow when a step exhausted its attempts (or raised NonRetryable)."""

    def __init__(self, step: str, *, cause_type: str, cause_message: str,
                 cause_traceback: str = "", attempts: int = 1) -> None:
        super().__init__(
            f"step {step!r} failed after {attempts} attempt(s): {cause_type}: {cause_message}",
            cause_type=cause_type, cause_message=cause_message, cause_traceback=cause_traceback,
        )
        self.step = step
        self.attempts = attempts


class WorkflowFailed(_CarriesCause):
    """Raised by ``handle.result()`` when the run failed.

    ``failed_compensations`` names the steps whose compensation exhausted its attempts: their
    effects were *not* undone.
    """

    def __init__(self, run_id: str, *, cause_type: str, cause_message: str,
                 cause_traceback: str = "", failed_compensations: Sequence[str] = ()) -> None:
        message = f"run {run_id!r} failed: {cause_type}: {cause_message}"
        if failed_compensations:
            names = ", ".join(repr(n) for n in failed_compensations)
            plural = "s" if len(failed_compensations) > 1 else ""
            message += (f" (and compensation failed for step{plural} {names}: not undone, see "
                        "the journal)")
        super().__init__(message, cause_type=cause_type, cause_message=cause_message,
                         cause_traceback=cause_traceback)
        self.run_id = run_id
        self.failed_compensations = tuple(failed_compensations)


class RunCancelled(WorkflowFailed):
    """Raised by ``handle.result()`` when the run was cancelled."""


class RunBlocked(PerdureError):
    """Raised by ``handle.result()`` when the run is blocked and needs an operator."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"run {run_id!r} is blocked: {reason}")
        self.run_id = run_id
        self.reason = reason


class Cancelled(PerdureError):
    """Raised inside a workflow at its current durable await when the run is cancelled."""


class SignalTimeout(PerdureError):
    """Raised inside a workflow when ``wait_for_signal`` reaches its timeout."""


class ChildFailed(_CarriesCause):
    """Raised inside a parent workflow when a child workflow failed or was cancelled."""

    def __init__(self, child_id: str, *, cause_type: str, cause_message: str,
                 cause_traceback: str = "") -> None:
        super().__init__(
            f"child run {child_id!r} failed: {cause_type}: {cause_message}",
            cause_type=cause_type, cause_message=cause_message, cause_traceback=cause_traceback,
        )
        self.child_id = child_id


class StreamClosed(PerdureError):
    """A write to a stream the workflow already closed (or an attempt to open it again)."""

    def __init__(self, stream: str) -> None:
        super().__init__(f"stream {stream!r} is closed: nothing more can be written to it")
        self.stream = stream


class EventTimeout(PerdureError, TimeoutError):
    """Raised by ``handle.get_event()`` when the key was not set within the timeout."""


class RequestTimeout(PerdureError, TimeoutError):
    """No reply to ``handle.request()`` within its timeout (the request is withdrawn if the
    run had not taken it yet); inside a workflow, ``wait_for_request`` saw no request in time."""


class RequestRejected(PerdureError):
    """Raised by ``handle.request()`` when the workflow answered with ``req.reject(...)``."""

    def __init__(self, run_id: str, name: str, reason: str) -> None:
        super().__init__(f"run {run_id!r} rejected request {name!r}: {reason}")
        self.run_id = run_id
        self.name = name
        self.reason = reason


class CallbackNotFound(PerdureError):
    """No callback has this token (it was mistyped, or its run was deleted)."""


class CallbackAlreadyCompleted(PerdureError):
    """The callback token was already completed (or failed): tokens are single-use."""


class CallbackTimeout(PerdureError):
    """Raised inside a workflow when ``cb.wait(timeout=...)`` reaches its timeout."""


class CallbackFailed(_CarriesCause):
    """Raised inside a workflow by ``cb.wait()`` when the callback was failed from outside
    (``engine.fail_callback(token, error)``)."""

    def __init__(self, *, cause_type: str, cause_message: str, cause_traceback: str = "") -> None:
        super().__init__(f"the callback was failed: {cause_type}: {cause_message}",
                         cause_type=cause_type, cause_message=cause_message,
                         cause_traceback=cause_traceback)


class WebhookRejected(PerdureError):
    """A webhook receiver answered an outbox delivery with something other than a 2xx (the
    publisher records it as a failed attempt and retries)."""


class InvalidSignature(PerdureError):
    """A received webhook's signature is missing, malformed, wrong, or too old."""


class NonRetryable(Exception):
    """Raise this (or a subclass) from a step to fail it at once, without further attempts."""
