"""Why a worker stops driving a run: internal control flow, never seen by workflow code."""

from __future__ import annotations

__all__ = ["Blocked", "Lost", "Stop", "Suspend", "Unavailable"]


class Stop(BaseException):
    """Internal: the run must stop being driven by this worker now.

    A ``BaseException`` so that a workflow's ``except Exception`` does not swallow it; and the
    context remembers it, so even a bare ``except:`` cannot make the run carry on.
    """


class Suspend(Stop):
    """Park the run until ``wake_at`` (unix seconds; None: no timer) or until one of
    ``waiting_for`` ("signal:NAME", "child:ID") happens."""

    def __init__(self, wake_at: float | None, reason: str,
                 waiting_for: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.wake_at = wake_at
        self.reason = reason
        self.waiting_for = waiting_for

    @staticmethod
    def combine(stops: list[Suspend]) -> Suspend:
        """One park for several concurrent waits (``gather``): the earliest timer, and every
        event any of them waits for."""
        dues = [s.wake_at for s in stops if s.wake_at is not None]
        events = tuple(dict.fromkeys(e for s in stops for e in s.waiting_for))
        return Suspend(min(dues) if dues else None, "; ".join(s.reason for s in stops), events)


class Blocked(Stop):
    """The run cannot go on with this deployment (replay diverged, code missing): stop for an
    operator."""

    def __init__(self, reason: str, *, seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the journal seq where replay diverged, for a non-determinism
        self.seq = seq


class Lost(Stop):
    """Another worker owns the run now (our epoch is stale)."""


class Unavailable(Stop):
    """The database stayed unreachable (a dropped connection, a full disk) for as long as our
    lease held: an infrastructure failure, never the workflow's. Stop driving the run and write
    nothing; it is claimed again, and replayed, once the database is back."""
