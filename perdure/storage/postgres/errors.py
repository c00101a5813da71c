"""The PostgreSQL adapter's one translation of driver errors into Perdure's typed errors.

What waiting may cure — a dropped or refused connection, the server shutting down or out of
disk, memory or connections, a lock or statement timeout, a read-only standby after a failover —
is :class:`StorageUnavailable`, which the engine retries and which never fails a run. What the
caller must change — a value PostgreSQL cannot take (a NUL character, a surrogate, a negative
``LIMIT``, a number out of range: SQLSTATE class 22), a missing privilege or table — is
:class:`InvalidConfiguration`. The driver's exception stays attached as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from perdure.errors import InvalidConfiguration, PerdureError, StorageUnavailable
from perdure.storage.postgres.pool import is_connection_error

__all__ = ["storage_error"]

#: SQLSTATE classes (and single codes) that waiting may cure
_TRANSIENT_CLASSES = ("08", "40", "53", "55", "57", "58", "XX")
_TRANSIENT_CODES = ("25006",)  # read_only_sql_transaction: a standby, or a failover under way


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        # (Class 57 includes a statement timeout and an administrator's cancel.)
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_CODES
    if isinstance(exc, asyncpg.InterfaceError):
        return is_connection_error(exc) and "closed" in str(exc)
    return is_connection_error(exc)


def storage_error(exc: BaseException, where: str, scrub: Callable[[str], str] = str, *,
                  broken: bool = False) -> BaseException:
    """The typed error for ``exc`` raised by the database at ``where`` (a redacted URL);
    ``scrub`` removes the password from a message; ``broken``: the caller saw the connection
    fail. Errors Perdure raised on purpose (a fenced-off write's ``LeaseLost``), and anything
    that is not an ``Exception``, pass through unchanged."""
    if isinstance(exc, PerdureError) or not isinstance(exc, Exception):
        return exc
    detail = f"{type(exc).__name__}: {scrub(str(exc))}"
    error: PerdureError
    if broken or _transient(exc):
        error = StorageUnavailable(f"PostgreSQL at {where} is unavailable: {detail}")
    elif isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | UnicodeError
                    | OverflowError | ValueError):
        error = InvalidConfiguration(f"PostgreSQL at {where} rejected the operation: {detail}")
    else:
        return exc  # a bug of ours: keep its own type and traceback
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error
