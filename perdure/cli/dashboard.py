"""``perdure dashboard``: serve the web dashboard over a database until Ctrl-C or SIGTERM.

It opens a client engine (``worker=False``: it drives no run) and serves
``perdure.dashboard.app`` with uvicorn on 127.0.0.1 by default. The token that unlocks the
actions comes from ``--token`` or ``$PERDURE_DASHBOARD_TOKEN``; without one it is read-only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Iterator
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
    d.add_argument("--port", type=port, default=8080,
                   help="the port (default: %(default)s; 0: a free one, printed)")
    d.add_argument("--token", default=None,
                   help=f"the secret that unlocks actions (default: ${TOKEN_ENV}; none: "
                        "read-only). Prefer the variable: a command line is visible to "
                        "every user of the machine")


def _listen(host: str, port: int) -> socket.socket:
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def run(args: argparse.Namespace) -> int:
    """The ``dashboard`` command."""
    try:
        import uvicorn

        from perdure.dashboard import app
    except ImportError as exc:
        raise CommandError(f"{exc}; the dashboard needs: pip install 'perdure[dashboard]'"
                           ) from None
    token = args.token or os.environ.get(TOKEN_ENV) or None

    class _Server(uvicorn.Server):
        """uvicorn's server, except that SIGTERM and Ctrl-C end ``serve()`` and nothing more:
        uvicorn would raise the signal again once it stopped, killing the process before
        the engine closes; here the command closes it and exits with status 0."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    async def serve() -> None:
        async with Engine(database_url(args), worker=False, table_prefix=args.prefix,
                          create=False) as engine:
            asgi = app(engine, token=token)
            # No access log: the paths are harmless, but a dashboard's log should hold
            # what it did (the actions), not every page view.
            config = uvicorn.Config(asgi, access_log=False, log_level="warning")
            # Listening before the line is printed: whoever reads it can connect at once
            # (with --port 0, the line names the port the system chose).
            sock = _listen(args.host, args.port)
            host, bound = sock.getsockname()[:2]
            print(f"perdure dashboard on http://{_url_host(host)}:{bound}/ over "
                  f"{engine.safe_url} ({'actions need the token' if token else 'read-only'})",
                  flush=True)
            server = _Server(config)
            with sock:
                await server.serve(sockets=[sock])

    asyncio.run(serve())
    return 0
