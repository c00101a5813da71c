"""What a run's durable operations report while they execute, to whoever watches the run.

The workflow layer cannot import the observability layer above it (logs, traces, metrics), so
the engine passes an implementation of :class:`RunHooks` into each run's context, the way it
passes the step executor. This base class does nothing: a run nobody watches pays one method
call per operation.
"""

from __future__ import annotations

from types import TracebackType

__all__ = ["NO_HOOKS", "AttemptWatch", "RunHooks"]


class AttemptWatch:
    """One attempt of a step or a compensation, watched while it executes.

    ``with watch:`` surrounds the attempt (an observer makes its trace span current there, so
    spans the step's own code opens nest under it). Leaving the block normally means the
    attempt returned; leaving it with an ``Exception`` means it failed, and :meth:`failed` then
    tells with what and whether it will be retried; any other ``BaseException`` (a cancelled
    task, a stopped run) means it was interrupted.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def failed(self, error: BaseException, *, retry_at: float | None) -> None:
        """The attempt raised ``error`` (the step's own exception); ``retry_at`` is when the
        next attempt is due, or None when the step has failed for good."""


class RunHooks:
    """What one execution of a run reports; every method is a no-op here."""

    def attempt(self, seq: int, kind: str, name: str, number: int) -> AttemptWatch:
        """Attempt ``number`` (1-based) of step or compensation ``name`` at ``seq`` begins."""
        return _NO_WATCH

    def waiting(self, reason: str, due: float | None) -> None:
        """The run waits (in memory, or about to park) for ``reason`` until ``due`` at the
        latest."""

    def timer_fired(self, seq: int, due: float, now: float) -> None:
        """The durable timer at ``seq`` fired at ``now``: ``due`` is when it was due, or when
        the run reached it if that was later (database time)."""

    def child_started(self, child_id: str, workflow: str) -> None:
        """The run started child run ``child_id`` of ``workflow``."""

    def trace_context(self) -> str | None:
        """The current trace context as stored with a run (for a child run the workflow starts
        now), or None when there is nothing to continue."""
        return None


_NO_WATCH = AttemptWatch()

#: the hooks of a run nobody watches
NO_HOOKS = RunHooks()
