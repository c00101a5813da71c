"""The SQLite adapter's one translation of driver errors into Perdure's typed errors.

``sqlite3`` raises one class (``OperationalError``) for a busy lock, a full disk and a missing
table alike; its result code tells them apart. Whatever waiting may cure (a lock held by another
process, even a frozen one; a full disk; an I/O error; a file system remounted read-only) is
:class:`StorageUnavailable`, which the engine retries and which never fails a run. What the
caller must change (a value SQLite cannot store, a file that is not a database) is
:class:`InvalidConfiguration`. The driver's exception stays attached as ``__cause__``.
"""

from __future__ import annotations

import sqlite3

from perdure.errors import InvalidConfiguration, PerdureError, StorageUnavailable

__all__ = ["is_transient", "storage_error"]

# Primary result codes (https://sqlite.org/rescode.html) that waiting may cure.
_TRANSIENT = {
    5,   # SQLITE_BUSY: another connection holds the lock
    6,   # SQLITE_LOCKED: a table is locked
    7,   # SQLITE_NOMEM
    8,   # SQLITE_READONLY: e.g. the file system was remounted read-only
    9,   # SQLITE_INTERRUPT
    10,  # SQLITE_IOERR: disk I/O error
    13,  # SQLITE_FULL: database or disk is full
    14,  # SQLITE_CANTOPEN: e.g. out of file descriptors, or the WAL cannot be created
    15,  # SQLITE_PROTOCOL: a WAL locking race
    17,  # SQLITE_SCHEMA: the schema changed under a prepared statement
}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (a driver error) may go away by itself."""
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        # Without a result code (raised by the module itself), an OperationalError is about
        # the database's state, not the statement's text.
        return code is None or code & 0xFF in _TRANSIENT
    return False


def storage_error(exc: BaseException, path: str) -> BaseException:
    """The typed error for ``exc`` raised while using the database at ``path``; errors Perdure
    raised on purpose (a fenced-off write's ``LeaseLost``), and anything that is not an
    ``Exception``, pass through unchanged."""
    if isinstance(exc, PerdureError) or not isinstance(exc, Exception):
        return exc
    error: PerdureError
    if is_transient(exc):
        error = StorageUnavailable(f"SQLite database {path!r} is unavailable: {exc}")
    elif isinstance(exc, sqlite3.Error | UnicodeError | OverflowError | ValueError):
        # A value SQLite cannot bind or store, a constraint, a file that is not a database.
        error = InvalidConfiguration(f"SQLite database {path!r} rejected the operation: "
                                     f"{type(exc).__name__}: {exc}")
    else:
        return exc  # a bug of ours: keep its own type and traceback
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error
