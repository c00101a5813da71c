"""Patching: changing a workflow's code without breaking the runs already in flight.

``if perdure.patched("fraud-check"): <new code> else: <old code>`` lets one deployment carry
both branches. The rule, adapted from Temporal's ``patched()`` to Perdure's seq-numbered
journal:

* **New code at the frontier** (no journal entry at this seq and none after it: this execution
  is past everything recorded) journals a ``patch`` marker at the next seq and answers True.
* **Replaying the marker** (the entry at this seq is this patch's marker) consumes the seq and
  answers True: the run went through the new branch before.
* **Replaying something else** (the entry at this seq, or a later one, was recorded by code
  that did not have the patch) answers False *without taking a seq*, so the old branch's
  operations meet their own entries at the same numbers they were recorded with. A marker of
  another patch at this seq is "something else" too: that patch came later in the old code.

The first answer for an id is remembered for the rest of the execution (a later call with the
same id takes no seq and answers the same), so one id may guard several places of one change.

Once no run that predates the patch is left, replace ``patched("x")`` by
``deprecate_patch("x")`` and delete the old branch: it consumes the marker of runs that
recorded one (keeping their seqs aligned) and writes nothing for new runs. Once no run that
recorded the marker is left either, delete the call.

A replay that still does not match (an old run meeting a deprecated patch, a patch id used
again for another change) blocks the run like any non-determinism: nothing is written or lost.
"""

from __future__ import annotations

from typing import NoReturn

from perdure.errors import InvalidConfiguration, NotInWorkflow
from perdure.records import JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step
from perdure.workflow.stops import Blocked

__all__ = ["PATCH", "deprecate_patch", "patched"]

#: the journal kind of a patch marker
PATCH = "patch"


def patched(patch_id: str) -> bool:
    """Whether this run takes the new branch of the change ``patch_id``.

    True for runs that reach this point with the new code (a marker is journaled the first
    time), False for runs that recorded this part of their journal before the patch existed.
    """
    ctx = _context("perdure.patched()", patch_id)
    if patch_id in ctx.patches:
        known = ctx.patches[patch_id]
        if known is None:
            _reused(ctx, patch_id, "deprecate_patch()", "patched()")
        return bool(known)
    seq = ctx.seq
    entry = ctx.journal.get(seq)
    if entry is not None and entry.kind == PATCH and entry.name == patch_id:
        ctx.take_seq()
        answer = True
    elif seq <= ctx.journal_end:
        recorded = _marker_seq(ctx, patch_id)
        if recorded is not None and recorded != seq:
            ctx.halt(Blocked(
                f"non-determinism at seq {seq}: the code asks for patch {patch_id!r} here, but "
                f"the run recorded that patch at seq {recorded}. A patch id names one change: "
                "give a new change a new id, or deploy the code this run recorded, then "
                "resume the run.", seq=seq))
        answer = False
    else:
        ctx.take_seq()
        ctx.write_nowait(JournalEntry(seq, PATCH, patch_id, "completed", 1,
                                      finished_at=ctx.clock.time()))
        answer = True
    ctx.patches[patch_id] = answer
    return answer


def deprecate_patch(patch_id: str) -> None:
    """Mark the change ``patch_id`` as the only code path: call it where ``patched(patch_id)``
    was, once no run that predates the patch is left, and delete the old branch.

    A run that recorded the patch's marker consumes it here, so its later operations keep their
    seqs; a new run journals nothing.
    """
    ctx = _context("perdure.deprecate_patch()", patch_id)
    if patch_id in ctx.patches:
        if ctx.patches[patch_id] is not None:
            _reused(ctx, patch_id, "patched()", "deprecate_patch()")
        return
    entry = ctx.journal.get(ctx.seq)
    if entry is not None and entry.kind == PATCH and entry.name == patch_id:
        ctx.take_seq()
    ctx.patches[patch_id] = None


def _context(what: str, patch_id: object) -> RunContext:
    if not isinstance(patch_id, str) or not patch_id or len(patch_id) > 255:
        raise InvalidConfiguration(f"a patch id must be a non-empty string of at most 255 "
                                   f"characters, not {patch_id!r}")
    if active_step.get() is not None:
        raise NotInWorkflow(f"{what} belongs to the workflow's code, not a step's: a step is "
                            "not replayed, so it has no old branch to take")
    return current(what)


def _marker_seq(ctx: RunContext, patch_id: str) -> int | None:
    for seq, entry in ctx.journal.items():
        if entry.kind == PATCH and entry.name == patch_id:
            return seq
    return None


def _reused(ctx: RunContext, patch_id: str, first: str, then: str) -> NoReturn:
    ctx.halt(Blocked(
        f"patch id {patch_id!r} is used by both {first} and {then} in this workflow's code: an "
        "id names one change, either live (patched) or retired (deprecate_patch). Give the "
        "new change a new id and resume the run."))
