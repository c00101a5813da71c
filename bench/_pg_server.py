"""A throwaway PostgreSQL 15 server for the benchmark (used by ``python -m bench``).

    .venv/bin/python bench/_pg_server.py

Starts ``tests/pgserver.py``'s ``PostgresServer`` (data dir on the system temp dir's
filesystem, ``fsync=on``, ``synchronous_commit=on``), prints one JSON line
``{"url": ..., "version": ..., "settings": {...}}`` with the superuser URL of the ``postgres``
database, then waits until its stdin closes (or it gets SIGTERM/SIGINT) and stops the server.
If this process dies, the server's own guard process stops it.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PostgresServer  # noqa: E402


def main() -> int:
    server = PostgresServer()
    server.start()
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        import psycopg

        settings: dict[str, str] = {}
        with psycopg.connect(server.url(), autocommit=True) as conn:
            for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
                         "shared_buffers", "max_connections", "data_directory"):
                row = conn.execute(f"SHOW {name}").fetchone()
                settings[name] = str(row[0]) if row else "?"
        print(json.dumps({"url": server.url(), "version": settings["server_version"],
                          "settings": settings}), flush=True)

        def wait_stdin() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=wait_stdin, daemon=True).start()
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
