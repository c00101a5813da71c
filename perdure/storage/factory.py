"""Turning a database URL into a storage adapter: the one place that imports an adapter."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from perdure.errors import InvalidConfiguration
from perdure.storage.port import Storage
from perdure.storage.urls import redact

__all__ = ["storage_for_url"]

_SQLITE_OPTIONS = {"synchronous"}


def storage_for_url(url: str, *, prefix: str, synchronous: str | None = None,
                    create: bool = True, **options: Any) -> Storage:
    """The adapter for ``url``: ``sqlite:///path.db``, ``sqlite:///:memory:`` or
    ``postgresql://user:password@host:port/db``. ``create=False``: a SQLite file that does
    not exist is an error rather than created (a PostgreSQL database is never created)."""
    if not isinstance(url, str):
        raise InvalidConfiguration(f"the database URL must be a string, not {type(url).__name__}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        rest = url[len("sqlite://"):]
        path, _, query = rest.partition("?")
        if not path.startswith("/") or len(path) < 2:
            raise InvalidConfiguration(
                f"invalid SQLite URL {url!r}: use sqlite:///relative/path.db, "
                "sqlite:////absolute/path.db or sqlite:///:memory:")
        params = dict(parse_qsl(query, keep_blank_values=True))
        unknown = set(params) - _SQLITE_OPTIONS
        if unknown:
            raise InvalidConfiguration(
                f"unknown SQLite URL option(s): {', '.join(sorted(unknown))}")
        from perdure.storage.sqlite.adapter import SqliteStorage

        sync = synchronous or params.get("synchronous", "full")
        return SqliteStorage(path[1:], prefix=prefix, synchronous=sync.lower(),  # type: ignore[arg-type]
                             create=create, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from perdure.storage.postgres.adapter import PostgresStorage  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise InvalidConfiguration(
                "PostgreSQL needs the driver: pip install 'perdure[postgres]'") from exc
        storage: Storage = PostgresStorage(url, prefix=prefix, **options)
        return storage
    raise InvalidConfiguration(
        f"unsupported database URL {redact(url)!r}: expected sqlite:///... or postgresql://...")
