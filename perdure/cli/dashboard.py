"""``perdure dashboard``: serve the web dashboard over a database until Ctrl-C or SIGTERM.

It opens a client engine (``worker=False``: it drives no run) and serves
``perdure.dashboard.app`` with uvicorn on 127.0.0.1 by default. The token that unlocks the
actions comes from ``--token`` or ``$PERDURE_DASHBOARD_TOKEN``; without one it is read-only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from perdure.cli.options import CommandError, database_url, port
from perdure.engine.engine import Engine

__all__ = ["add_parser", "run"]

TOKEN_ENV = "PERDURE_DASHBOARD_TOKEN"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``dashboard`` to the subcommands ``sub``."""
    d = sub.add_parser(
        "dashboard", parents=[common], help="serve the web dashboard",
        description="Serve the web dashboard (runs, timelines, workers; actions with a token) "
                    "over the database until Ctrl-C. Needs perdure[dashboard].")
    d.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default: %(default)s, this machine only)")
    d.add_argument("--port", type=port, default=8080, help="the port (default: %(default)s)")
    d.add_argument("--token", default=None,
                   help=f"the secret that unlocks actions (default: ${TOKEN_ENV}; none: "
                        "read-only). Prefer the variable: a command line is visible to "
                        "every user of the machine")


def run(args: argparse.Namespace) -> int:
    """The ``dashboard`` command."""
    try:
        import uvicorn

        from perdure.dashboard import app
    except ImportError as exc:
        raise CommandError(f"{exc}; the dashboard needs: pip install 'perdure[dashboard]'"
                           ) from None
    token = args.token or os.environ.get(TOKEN_ENV) or None

    async def serve() -> None:
        async with Engine(database_url(args), worker=False, table_prefix=args.prefix,
                          create=False) as engine:
            asgi = app(engine, token=token)
            # No access log: the paths are harmless, but a dashboard's log should hold
            # what it did (the actions), not every page view.
            config = uvicorn.Config(asgi, host=args.host, port=args.port, access_log=False,
                                    log_level="warning")
            server = uvicorn.Server(config)
            print(f"perdure dashboard on http://{args.host}:{args.port}/ over "
                  f"{engine.safe_url} ({'actions need the token' if token else 'read-only'})",
                  flush=True)
            await server.serve()

    asyncio.run(serve())
    return 0
