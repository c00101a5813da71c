"""Perdure's exceptions.

Every error Perdure raises on purpose is a :class:`PerdureError`::

    PerdureError
    ├── InvalidConfiguration      bad engine URL, table prefix, option or decorator argument
    │   └── InvalidCursor         a list_runs cursor that is not one, or is another query's
    ├── SerializationError        a value the typed codec cannot encode or decode
    ├── UnknownWorkflowError      a workflow name or function the engine does not know
    ├── RunNotFound               no run with that id
    ├── RunFinished               the run already reached a terminal state (signal to a done run)
    ├── NonDeterminismError       replay asked for a different operation than the journal holds
    ├── NotInWorkflow             an in-workflow function (now(), a step, ...) called outside one
    ├── StorageUnavailable        the database cannot be reached (and the call was not retried)
    ├── StepFailed                inside a workflow: a step exhausted its attempts
    ├── WorkflowFailed            from ``handle.result()``: the run failed
    │   └── RunCancelled          from ``handle.result()``: the run was cancelled
    ├── RunBlocked                from ``handle.result()``: the run is blocked (non-determinism)
    ├── Cancelled                 inside a workflow: the run is being cancelled
    ├── SignalTimeout             inside a workflow: ``wait_for_signal`` timed out
    ├── ChildFailed               inside a workflow: a child workflow failed
    └── LeaseLost                 internal: this worker no longer owns the run (fencing)

    NonRetryable                  raised *by a step* to stop retrying at once (an Exception,
                                  deliberately not a PerdureError: it is user vocabulary)

``StepFailed``, ``WorkflowFailed`` and ``ChildFailed`` carry the original cause's type name,
message and traceback text, because the cause itself may be a type that cannot travel through the
journal (it may not even be importable on the worker that reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "Cancelled",
    "ChildFailed",
    "InvalidConfiguration",
    "InvalidCursor",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "PerdureError",
    "RunBlocked",
    "RunCancelled",
    "RunFinished",
    "RunNotFound",
    "SerializationError",
    "SignalTimeout",
    "StepFailed",
    "StorageUnavailable",
    "UnknownWorkflowError",
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


class UnknownWorkflowError(PerdureError):
    """The workflow is not registered on this engine (or no such name exists)."""


class RunNotFound(PerdureError):
    """No run exists with the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunFinished(PerdureError):
    """The run has already reached a terminal state, so the request cannot apply."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id!r} is already {status}")
        self.run_id = run_id
        self.status = status


class NonDeterminismError(PerdureError):
    """Replay asked for an operation that differs from the one the journal recorded."""


class NotInWorkflow(PerdureError):
    """An in-workflow function was called outside a running workflow (or step)."""


class StorageUnavailable(PerdureError):
    """The database could not be reached (or the connection broke mid-operation and the
    operation could not be retried safely). Nothing is known to be lost: fenced writes are
    either committed or not, and a run's lease lapses if its worker cannot write."""


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


class NonRetryable(Exception):
    """Raise this (or a subclass) from a step to fail it at once, without further attempts."""
