"""Configuration of the PostgreSQL adapter: URL options, names pasted into SQL, and the named
queries compiled for asyncpg.

Everything that ends up in SQL text (the schema, the table prefix, the NOTIFY channel) is
validated here as strictly as :func:`perdure.storage.sqlfiles.validate_prefix`; every value is
a bound parameter.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from perdure.errors import InvalidConfiguration
from perdure.storage.sqlfiles import queries, validate_prefix
from perdure.storage.urls import redact

__all__ = ["GENERIC_PLAN", "Settings", "channel_name", "compiled_queries", "settings",
           "validate_schema"]

#: The claims' transactions begin with this. asyncpg prepares every statement, but PostgreSQL
#: re-plans a prepared statement for each call (a custom plan) unless it judges the generic
#: plan no costlier: for the claims it never does (their ``wake_at <= $now`` looks unselective
#: to the generic estimate), so each claim paid its planning (1-2 ms measured on a loaded
#: 2-core box against 0.1-0.4 ms with the generic plan). The generic plans use the same
#: indexes (tests/pg/test_explain.py checks them). SET LOCAL: it ends with the transaction,
#: so no other statement on the pooled connection is affected.
GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan"

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,39}")
#: options read from the URL's query string; everything else there goes to asyncpg
URL_OPTIONS = ("schema", "pool_size", "connect_timeout", "reconnect_timeout")
_CHANNEL_VERSION = "v1"  # bump when the meaning of a notification changes


def validate_schema(schema: object) -> str | None:
    """Return ``schema`` if it is a safe schema name (or None), else raise
    ``InvalidConfiguration``. Held to the table prefix's rules: it is pasted into SQL text."""
    if schema is None:
        return None
    if not isinstance(schema, str) or not _SCHEMA.fullmatch(schema) or schema.startswith("pg_"):
        raise InvalidConfiguration(
            f"invalid schema {schema!r}: use 1-40 lower-case letters, digits or underscores, "
            "not starting with a digit or 'pg_' (e.g. 'perdure' or 'billing')")
    return schema


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated options of one :class:`~perdure.storage.postgres.PostgresStorage`."""

    dsn: str  # the URL for asyncpg: Perdure's options removed
    redacted: str  # the URL fit for messages
    password: str | None  # to scrub from server messages
    prefix: str
    schema: str | None
    pool_size: int
    connect_timeout: float
    reconnect_timeout: float
    restart_grace: float

    @property
    def qualified_prefix(self) -> str:
        """What ``{p}`` expands to: ``"schema".prefix`` or just the prefix."""
        return f'"{self.schema}".{self.prefix}' if self.schema else self.prefix

    @property
    def namespace(self) -> str:
        """Hashed with a worker id into its advisory-lock key: distinct per schema and prefix
        (advisory locks are per database already)."""
        return f"perdure:{self.schema or ''}:{self.prefix}:"


def settings(url: str, *, prefix: str, schema: str | None, pool_size: int | None,
             connect_timeout: float | None, reconnect_timeout: float | None,
             restart_grace: float) -> Settings:
    """Validate the adapter's options; those given as arguments win over the URL's."""
    if not isinstance(url, str):
        raise InvalidConfiguration("the database URL must be a string")
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        password = parts.password
    except ValueError as exc:
        raise InvalidConfiguration(f"invalid PostgreSQL URL {redact(url)!r}: {exc}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise InvalidConfiguration(f"not a PostgreSQL URL: {redact(url)!r}")
    ours = {k: v for k, v in pairs if k in URL_OPTIONS}
    rest = [(k, v) for k, v in pairs if k not in URL_OPTIONS]
    if not any(k == "application_name" for k, _ in rest):
        rest.append(("application_name", "perdure"))  # visible in pg_stat_activity
    if isinstance(restart_grace, bool) or not isinstance(restart_grace, int | float) \
            or not 0 <= restart_grace < math.inf:
        raise InvalidConfiguration(f"restart_grace must be a number >= 0, not {restart_grace!r}")
    return Settings(
        dsn=parts._replace(query=urlencode(rest)).geturl(),
        redacted=redact(url),
        password=password,
        prefix=validate_prefix(prefix),
        schema=validate_schema(schema if schema is not None else ours.get("schema")),
        pool_size=_number("pool_size", pool_size, ours, 8, integer=True),
        connect_timeout=_number("connect_timeout", connect_timeout, ours, 3.0),
        reconnect_timeout=_number("reconnect_timeout", reconnect_timeout, ours, 30.0),
        restart_grace=float(restart_grace),
    )


def _number(name: str, value: float | None, opts: Mapping[str, str], default: float, *,
            integer: bool = False) -> Any:
    raw: object = value if value is not None else opts.get(name, default)
    number: object = raw
    if isinstance(raw, str):
        try:
            number = int(raw) if integer else float(raw)
        except ValueError:
            number = None
    if (isinstance(number, bool) or not isinstance(number, int | float)
            or (integer and not isinstance(number, int)) or not 0 < number < math.inf):
        kind = "integer" if integer else "number"
        raise InvalidConfiguration(f"{name} must be a positive {kind}, not {raw!r}")
    return number


def channel_name(schema: str | None, prefix: str, kind: str = "wake") -> str:
    """A NOTIFY channel: versioned and specific to the schema and prefix (at most 63 bytes,
    PostgreSQL's identifier limit; hashed beyond). ``wake`` wakes workers; ``talk`` wakes
    the readers of events, streams and replies."""
    name = f"{schema + '.' if schema else ''}{prefix}{kind}_{_CHANNEL_VERSION}"
    if len(name) > 63:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"perdure_{kind}_{_CHANNEL_VERSION}_{digest}"
    return name


_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def compiled_queries(prefix: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The named queries of sql/postgres/queries.sql, ``{p}`` filled in, comments dropped and
    ``:name`` parameters numbered ``$1, $2, ...`` for asyncpg; with each query, the parameter
    names in ``$n`` order. (A ``::type`` cast is not a parameter.)"""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, text in queries("postgres", prefix).items():
        names: list[str] = []

        def number(m: re.Match[str], names: list[str] = names) -> str:
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        out[name] = (_PARAM.sub(number, _COMMENT.sub("", text)), tuple(names))
    return out
