"""The client commands: ``runs list|show|cancel|resume|prune``, ``queues``, ``resume``, ``signal``,
``cancel``, ``migrate`` (and those of ``lifecycle``: ``pause``, ``runs fork|export``,
``runs list --stranded``).

They open a client engine (``worker=False``): it fails fast with ``StorageUnavailable`` when the
database cannot be reached, instead of waiting for it as a worker does. Only ``migrate``
creates a SQLite file: the others, pointed at a path where there is none, say so (a typo must
not leave an empty ``perdure.db`` behind).
"""

from __future__ import annotations

import argparse
import json

from perdure.cli import bulk, lifecycle, prune, runs_list
from perdure.cli.filters import filters_from
from perdure.cli.options import database_url
from perdure.cli.queues import print_queues
from perdure.engine.engine import Engine

__all__ = ["run"]


async def run(args: argparse.Namespace) -> int:
    """The commands that talk to the database as a client: runs, resume, signal, cancel."""
    # Mistakes on the command line are reported before connecting.
    payload = json.loads(args.payload) if args.command == "signal" else None
    if args.command == "runs" and args.runs_command in ("list", *bulk.ACTIONS):
        filters_from(args)
    async with Engine(database_url(args), worker=False, table_prefix=args.prefix,
                      create=args.command == "migrate") as engine:
        if await lifecycle.run(engine, args):
            pass
        elif args.command == "migrate":
            applied = engine.migrations_applied
            print(f"applied {len(applied)} migration(s) to {engine.safe_url}: "
                  f"{', '.join(applied)}" if applied
                  else f"the schema on {engine.safe_url} is up to date; nothing to apply")
        elif args.command == "runs" and args.runs_command == "list":
            return await runs_list.list_runs(engine, args)
        elif args.command == "queues":
            print_queues(await engine.queues())
        elif args.command == "runs" and args.runs_command == "show":
            return await runs_list.show_run(engine, args)
        elif args.command == "runs" and args.runs_command in bulk.ACTIONS:
            return await bulk.run_bulk(engine, args, args.runs_command)
        elif args.command == "runs" and args.runs_command == "prune":
            return await prune.prune(engine, args)
        elif args.command == "resume":
            await engine.resume(args.id)
            print(f"run {args.id} resumed: a worker will drive it now")
        elif args.command == "signal":
            sent = await engine.signal(args.id, args.name, payload, idempotency_key=args.key)
            print(f"signal {args.name!r} sent to run {args.id}" if sent
                  else f"signal {args.name!r} with key {args.key!r} was already sent to run "
                       f"{args.id}; not sent again")
        elif args.command == "cancel":
            changed = await engine.cancel(args.id)
            print(f"run {args.id}: cancellation requested" if changed
                  else f"run {args.id} had already finished; nothing to cancel")
    return 0
