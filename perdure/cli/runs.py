"""The client commands: ``runs list|show``, ``queues``, ``resume``, ``signal``, ``cancel``,
``migrate``.

They open a client engine (``worker=False``): it fails fast with ``StorageUnavailable`` when the
database cannot be reached, instead of waiting for it as a worker does.
"""

from __future__ import annotations

import argparse
import json

from perdure.cli.options import database_url
from perdure.cli.output import print_run, print_runs
from perdure.cli.queues import print_queues
from perdure.engine.engine import Engine

__all__ = ["run"]


async def run(args: argparse.Namespace) -> int:
    """The commands that talk to the database as a client: runs, resume, signal, cancel."""
    payload = json.loads(args.payload) if args.command == "signal" else None  # before connecting
    async with Engine(database_url(args), worker=False, table_prefix=args.prefix) as engine:
        if args.command == "migrate":
            applied = engine.migrations_applied
            print(f"applied {len(applied)} migration(s) to {engine.safe_url}: "
                  f"{', '.join(applied)}" if applied
                  else f"the schema on {engine.safe_url} is up to date; nothing to apply")
        elif args.command == "runs" and args.runs_command == "list":
            print_runs(await engine.list_runs(status=args.status, workflow=args.workflow,
                                               limit=args.limit, queue=args.queue))
        elif args.command == "queues":
            print_queues(await engine.queues())
        elif args.command == "runs" and args.runs_command == "show":
            print_run(await engine.status(args.id), await engine.journal(args.id),
                      await engine.history(args.id), full=args.full)
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
