"""Tags set from inside a workflow: business keys that make a run findable as it goes
(``engine.list_runs(tags={"stage": "shipped"})``)."""

from __future__ import annotations

import json
from collections.abc import Coroutine, Mapping
from typing import Any

from perdure import validate
from perdure.errors import InvalidConfiguration
from perdure.records import JournalEntry
from perdure.workflow.context import RunContext, current

__all__ = ["set_tags"]


def set_tags(tags: Mapping[str, str | None] | None = None, /,
             **more: str | None) -> Coroutine[Any, Any, dict[str, str]]:
    """Add or change tags of the running run (a value of None removes that tag); returns
    all its tags now. ``await perdure.set_tags(stage="shipped")``.

    Journaled: a replay returns the recorded tags and writes nothing. Tags are text to text,
    at most 32 per run, keys up to 64 characters and values up to 256; anything else raises
    ``InvalidConfiguration`` here, in the workflow (its own error, like any bad call).
    """
    ctx = current("perdure.set_tags()")
    changes = validate.tags({**(tags or {}), **more}, removals=True)
    seq = ctx.take_seq()
    return _set_tags(ctx, seq, changes)


async def _set_tags(ctx: RunContext, seq: int, changes: dict[str, str | None]
                    ) -> dict[str, str]:
    entry = ctx.recorded(seq, "tags", "set_tags")
    if entry is not None:
        ctx.replay_cancel(entry)
        recorded: dict[str, str] = json.loads(entry.output or "{}")
        return recorded
    await ctx.deliver_cancel(seq, "tags", "set_tags")
    await ctx.flush()  # journal writes queued before this one commit first
    row = await ctx.store.get_run(ctx.run_id)
    merged: dict[str, str] = json.loads(row.tags) if row is not None and row.tags else {}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > validate.MAX_TAGS:
        raise InvalidConfiguration(f"a run has at most {validate.MAX_TAGS} tags; these "
                                   f"changes would give it {len(merged)}")
    text = json.dumps(merged, separators=(",", ":"), sort_keys=True)
    await ctx.guard(lambda: ctx.store.set_tags(
        ctx.run_id, ctx.epoch, ctx.worker,
        JournalEntry(seq, "tags", "set_tags", "completed", 1, text,
                     finished_at=ctx.clock.time()), merged))
    return merged
