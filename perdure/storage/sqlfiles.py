"""Loading the adapters' SQL: named queries and numbered migrations from ``.sql`` files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Migration", "migrations", "queries", "validate_prefix"]

_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"(\d{4})_(\w+)\.sql")


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe table prefix, else raise ``InvalidConfiguration``.

    The prefix is the one piece of configuration pasted into SQL text (table names cannot be
    bound parameters), so it is held to lower-case letters, digits and underscores.
    """
    from perdure.errors import InvalidConfiguration

    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise InvalidConfiguration(
            f"invalid table prefix {prefix!r}: use 1-40 lower-case letters, digits or "
            "underscores, not starting with a digit (e.g. 'perdure_' or 'billing_')"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema migration."""

    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        """``NNNN_name``, as the file is named."""
        return f"{self.version:04d}_{self.name}"


def _read(backend: str, filename: str) -> str:
    return resources.files(f"perdure.storage.{backend}").joinpath(filename).read_text()


@cache
def queries(backend: str, prefix: str) -> dict[str, str]:
    """The backend's named queries with the table prefix filled in: those of ``queries.sql``
    and of every other ``.sql`` file beside it that is not a migration (one per aggregate,
    such as ``talk.sql``). A name defined twice is an error."""
    folder = resources.files(f"perdure.storage.{backend}")
    more = sorted(e.name for e in folder.iterdir() if e.name.endswith(".sql")
                  and e.name != "queries.sql" and not _MIGRATION.fullmatch(e.name))
    files = ["queries.sql", *more]
    found: dict[str, str] = {}
    for filename in files:
        parts = _NAME.split(_read(backend, filename))
        # parts = [preamble, name1, body1, name2, body2, ...]
        for i in range(1, len(parts), 2):
            if parts[i] in found:
                raise RuntimeError(f"query {parts[i]!r} is defined twice ({filename})")
            found[parts[i]] = parts[i + 1].strip().replace("{p}", prefix)
    return found


@cache
def migrations(backend: str, prefix: str) -> tuple[Migration, ...]:
    """The backend's migrations (``NNNN_name.sql``) in order, prefix filled in."""
    folder = resources.files(f"perdure.storage.{backend}")
    found = []
    for entry in folder.iterdir():
        m = _MIGRATION.fullmatch(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2),
                                   entry.read_text().replace("{p}", prefix)))
    return tuple(sorted(found, key=lambda mig: mig.version))
