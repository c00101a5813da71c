"""The commands for long-lived runs and code changes: ``pause``, ``runs fork``, ``runs export``
and ``runs list --stranded``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perdure.cli.output import print_runs
from perdure.engine.engine import Engine
from perdure.engine.histories import document
from perdure.errors import InvalidConfiguration

__all__ = ["add_commands", "run"]


def add_commands(sub: Any, runs: Any, ls: argparse.ArgumentParser,
                 common: argparse.ArgumentParser) -> None:
    """Add the commands to the parser: ``sub`` holds the top-level commands, ``runs`` the
    ``runs`` group, ``ls`` is ``runs list``."""
    ls.add_argument("--stranded", action="store_true",
                    help="only unfinished runs whose workflow version no live worker serves")
    pause = sub.add_parser("pause", parents=[common],
                           help="pause a run at its next durable await (resume continues it)")
    pause.add_argument("id")
    fork = runs.add_parser("fork", parents=[common],
                           help="a new run with the same arguments, re-executing from a seq")
    fork.add_argument("id")
    fork.add_argument("--from", dest="from_seq", type=int, required=True, metavar="SEQ",
                      help="entries before SEQ are copied; everything from SEQ runs again")
    fork.add_argument("--new-id", dest="new_id", help="the fork's run id (default: a UUID)")
    export = runs.add_parser("export", parents=[common],
                             help="write runs and their journals as versioned JSON (for "
                                  "perdure.testing.replay)")
    export.add_argument("ids", nargs="*", metavar="ID", help="runs to export")
    export.add_argument("--workflow", help="without IDs: the newest runs of this workflow")
    export.add_argument("--status", help="without IDs: only runs with this status")
    export.add_argument("--limit", type=int, default=100, help="without IDs: how many")
    export.add_argument("--out", help="the file to write (default: standard output)")


async def run(engine: Engine, args: argparse.Namespace) -> bool:
    """Run the command if it is one of these; False if it is not."""
    if args.command == "pause":
        if await engine.pause(args.id):
            print(f"run {args.id} paused (or pausing at its next durable await); "
                  f"`perdure resume {args.id}` continues it")
        else:
            print(f"run {args.id} had already finished; nothing to pause")
        return True
    if args.command != "runs":
        return False
    if args.runs_command == "list" and args.stranded:
        print_runs(await engine.stranded_runs(workflow=args.workflow, limit=args.limit))
        served = await engine.served_versions()
        shown = ", ".join(f"{n} ({', '.join(sorted(v))})" for n, v in sorted(served.items()))
        print(f"\nlive workers serve: {shown or 'nothing (no live worker)'}")
        return True
    if args.runs_command == "fork":
        handle = await engine.fork(args.id, from_seq=args.from_seq, id=args.new_id)
        print(f"run {handle.id} forked from {args.id} at seq {args.from_seq}")
        return True
    if args.runs_command == "export":
        if args.ids and (args.workflow or args.status):
            raise InvalidConfiguration("give run IDs or --workflow/--status, not both")
        runs = await engine.export_runs(args.ids, workflow=args.workflow, status=args.status,
                                        limit=args.limit)
        text = json.dumps(document(runs, exported_at=engine.clock.time()), indent=1)
        if args.out:
            Path(args.out).write_text(text + "\n")
            print(f"exported {len(runs)} run(s) to {args.out}", file=sys.stderr)
        else:
            print(text)
        return True
    return False
