"""``perdure runs cancel|resume --where ...``: act on every run that matches, in batches.

It counts first and asks (``--yes`` confirms up front; without a terminal to ask, it refuses
rather than guess). Then it walks the matching runs a page at a time with a keyset cursor and
acts on each: a run that changed meanwhile (finished, resumed by someone else) is skipped,
never an error. Interrupted, it says how far it got; the same command again carries on, since
what it already did no longer matches (a resumed run is pending) or is a no-op (a run already
cancelling is flagged again).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from perdure.cli.filters import add_filter_options, describe, filters_from
from perdure.cli.options import CommandError, positive_int
from perdure.engine.engine import Engine
from perdure.errors import PerdureError, RunNotFound
from perdure.records import RunStatus

__all__ = ["ACTIONS", "add_bulk_parser", "run_bulk"]

#: the statuses each action applies to (also its default status filter)
ACTIONS = {
    "cancel": (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.BLOCKED),
    "resume": (RunStatus.FAILED, RunStatus.BLOCKED),
}
_PAST = {"cancel": "cancellation requested for", "resume": "resumed"}


def add_bulk_parser(sub: Any, common: argparse.ArgumentParser, action: str) -> None:
    """``runs cancel`` or ``runs resume``."""
    allowed = ", ".join(s.value for s in ACTIONS[action])
    p = sub.add_parser(
        action, parents=[common], help=f"{action} every run that matches the filters",
        description=f"{action.capitalize()} every run that matches the filters (only {allowed} "
                    "runs; that is the default status filter). Counts them and asks first; "
                    "works in batches; safe to interrupt and run again.")
    add_filter_options(p)
    p.add_argument("--all", action="store_true",
                   help="no filter besides the status: every such run")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--batch", type=positive_int, default=100, metavar="N",
                   help="runs per batch (default: %(default)s)")


async def run_bulk(engine: Engine, args: argparse.Namespace, action: str) -> int:
    """Count, confirm, then act batch by batch; 0 once every matching run was handled."""
    filters = filters_from(args)
    if not filters and not args.all:
        raise CommandError(f"runs {action}: give a filter (--where NAME=VALUE, --status, "
                           f"--workflow, --tag ...) or --all")
    allowed = {s.value for s in ACTIONS[action]}
    wrong = sorted(set(filters.get("status", [])) - allowed)
    if wrong:
        raise CommandError(f"runs {action} applies to {', '.join(sorted(allowed))} runs, not "
                           f"{', '.join(wrong)}")
    filters.setdefault("status", sorted(allowed))
    total = await engine.count_runs(**filters)
    shown = describe(filters)
    if total == 0:
        print(f"no runs match ({shown}); nothing to {action}")
        return 0
    print(f"{total} run(s) match ({shown})")
    if not args.yes and not _confirm(f"{action} {total} run(s)? [y/N] "):
        print("nothing done")
        return 1
    done = skipped = 0
    cursor: str | None = None
    try:
        while True:
            page = await engine.list_runs(limit=args.batch, cursor=cursor, **filters)
            for info in page:
                if await _act(engine, action, info.id):
                    done += 1
                else:
                    skipped += 1
            print(f"{_PAST[action]} {done} run(s) so far" +
                  (f" ({skipped} skipped: they had changed)" if skipped else ""))
            cursor = page.next_cursor
            if cursor is None:
                break
    except KeyboardInterrupt:
        print(f"interrupted: {_PAST[action]} {done} run(s); run the same command again to "
              "carry on", file=sys.stderr)
        raise
    print(f"done: {_PAST[action]} {done} run(s)" +
          (f", {skipped} skipped (they had finished or changed meanwhile)" if skipped else ""))
    return 0


async def _act(engine: Engine, action: str, run_id: str) -> bool:
    """Whether the action applied (False: the run changed since it was listed)."""
    try:
        if action == "cancel":
            return await engine.cancel(run_id)
        await engine.resume(run_id)
        return True
    except RunNotFound:
        return False  # pruned meanwhile
    except PerdureError:
        # Refused because the run moved on (someone else resumed it)? Then skip it.
        try:
            status = (await engine.status(run_id)).status
        except RunNotFound:
            return False
        if status not in ACTIONS[action]:
            return False
        raise


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise CommandError("not confirmed: pass --yes to act without a terminal to ask on")
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
