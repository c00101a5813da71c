"""Long-lived runs: continue-as-new, and the journal size that tells a loop when.

A workflow that loops for ever (a subscription, a poller, an agent) would grow its journal
without bound, and every replay after a crash would read all of it. ``raise
perdure.ContinueAsNew(*args)`` ends the current *incarnation* instead: the run keeps its id, its
journal is archived (``handle.incarnations()``), and it starts again from the top with the new
arguments and an empty journal — so a replay never reads more than one incarnation.

Design (see ``Runner._continue`` and the storage's ``continue_run``):

* An incarnation is a new *generation* too, so the steps of incarnation N get idempotency keys
  of their own (``RUN:SEQ:gN``): sequence numbers restart at 0, and a payment API that
  deduplicates by key must not take seq 0 of the second incarnation for seq 0 of the first.
* The new incarnation runs the engine's default version of the workflow (the newest, or the
  one marked ``default=True``): its journal is empty, so nothing constrains it to the old
  code, and a long-lived loop picks up a deployment at its next continue-as-new. Arguments
  that do not fit that version's signature block the run (a deployment error).
* The archive and the requeue are one transaction: a worker killed in the middle leaves either
  the old incarnation (replayed, and it continues again, deterministically) or the new one.
* A saga spans one incarnation: steps completed before a continue-as-new are not compensated
  by a later failure. Unconsumed signals stay buffered for the next incarnation;
  ``handle.result()`` waits through every incarnation (the run id never changes).
"""

from __future__ import annotations

from typing import Any

from perdure.errors import NotInWorkflow, SerializationError
from perdure.workflow.context import current
from perdure.workflow.scope import active_step
from perdure.workflow.stops import Blocked

__all__ = ["ContinueAsNew", "journal_size"]


class ContinueAsNew(BaseException):
    """Raise ``ContinueAsNew(*args, **kwargs)`` from a workflow to end its current incarnation
    and start the run again, with these arguments and an empty journal.

    The arguments are checked and encoded here, at the raise: ``TypeError`` for arguments that
    do not fit the workflow's signature, ``SerializationError`` for a value that cannot be
    encoded. A ``BaseException``, so that ``except Exception`` in the workflow does not catch
    it; raised inside a step, it fails that attempt like any exception.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ctx = current("perdure.ContinueAsNew")
        target = ctx.registry.get(ctx.workflow.name) or ctx.workflow
        try:
            text = target.codec.encode_args(args, kwargs)
        except (TypeError, SerializationError) as exc:
            if target is ctx.workflow:
                raise  # the workflow's own mistake, at the call that made it
            ctx.halt(Blocked(
                f"cannot continue as new onto workflow {target.name!r} version "
                f"{target.version!r} (the default version on this worker): {exc}. Deploy a "
                "version whose signature takes these arguments, then resume the run."))
        super().__init__(f"continue as new: workflow {target.name!r} version "
                         f"{target.version!r}")
        #: the version of the next incarnation, and its arguments encoded
        self.version = target.version
        self.input = text


def journal_size() -> int:
    """How many durable operations the current incarnation has made so far (its journal's
    length, counting the ones in flight): deterministic, so a loop can decide on it when to
    ``raise ContinueAsNew(...)``. Workflow code only: in a step it would not be
    deterministic."""
    if active_step.get() is not None:
        raise NotInWorkflow("perdure.journal_size() belongs to the workflow's code, not a "
                            "step's")
    return current("perdure.journal_size()").seq
