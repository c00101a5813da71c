"""Which runs to list: the filters of ``list_runs`` checked and turned into a storage query,
and the keyset cursors that continue a query where its last page ended.

A cursor is opaque to its user: ``v1.`` and the URL-safe base64 of the JSON
``[fingerprint, created_at, id]``, where the fingerprint is a hash of the filters. The key is
the last run of the page (runs are listed by ``(created_at, id)`` descending), so the next
page starts right below it however many runs were created meanwhile; the fingerprint makes
a cursor passed with other filters a :class:`~perdure.errors.InvalidCursor` instead of a
silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from perdure import validate
from perdure.errors import InvalidConfiguration, InvalidCursor
from perdure.records import RunStatus
from perdure.storage.port import RunQuery

__all__ = ["RunFilter", "decode_cursor", "encode_cursor", "statuses"]

_CURSOR_VERSION = "v1"


def statuses(value: object, what: str = "status") -> tuple[str, ...]:
    """A status, or several, as sorted status names; an unknown one raises
    ``InvalidConfiguration`` naming the known ones."""
    if value is None:
        return ()
    items: Iterable[object] = ([value] if isinstance(value, str | RunStatus)
                               else value if isinstance(value, Iterable) else [value])
    out: set[str] = set()
    for item in items:
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            out.add(RunStatus(item).value)
        except ValueError:
            known = ", ".join(s.value for s in RunStatus)
            raise InvalidConfiguration(f"unknown {what} {item!r}; one of {known}") from None
    if not out:
        raise InvalidConfiguration(f"{what}: give at least one status (or None for any)")
    return tuple(sorted(out))


def _time(value: object, what: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidConfiguration(f"{what} must be an aware datetime, not "
                                   f"{type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidConfiguration(f"{what} must be an aware datetime (with a tzinfo), not "
                                   f"{value!r}")
    return value.timestamp()


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The filters of one query, checked (every field None or empty matches every run)."""

    statuses: tuple[str, ...] = ()
    workflow: str | None = None
    version: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    created_after: float | None = None  #: inclusive
    created_before: float | None = None  #: exclusive
    parent: str | None = None
    queue: str | None = None

    @classmethod
    def of(cls, *, status: object = None, workflow: object = None, version: object = None,
           tags: object = None, created_after: object = None, created_before: object = None,
           parent: object = None, queue: object = None) -> RunFilter:
        """Check the filters as a user passed them; bad ones raise ``InvalidConfiguration``
        naming the filter."""
        def name(value: object, what: str) -> str | None:
            return None if value is None else validate.name(value, what, max_length=255)

        pairs: tuple[tuple[str, str], ...] = ()
        if tags is not None:
            checked = validate.tags(tags, "the tags filter")
            # Sorted, so that the same filter written in another order is the same query.
            pairs = tuple(sorted((k, v) for k, v in checked.items() if v is not None))
        return cls(statuses(status), name(workflow, "the workflow filter"),
                   name(version, "the version filter"), pairs,
                   _time(created_after, "created_after"), _time(created_before, "created_before"),
                   name(parent, "the parent run id filter"), name(queue, "the queue filter"))

    @property
    def empty(self) -> bool:
        """Whether no filter is set (every run matches)."""
        return self == RunFilter()

    def fingerprint(self) -> str:
        """A short hash of the filters: what ties a cursor to its query."""
        text = json.dumps([self.statuses, self.workflow, self.version, self.tags,
                           self.created_after, self.created_before, self.parent]
                          + ([self.queue] if self.queue is not None else []))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def query(self, *, limit: int, cursor: str | None = None) -> RunQuery:
        """The storage query for one page of at most ``limit`` runs after ``cursor``."""
        bound: tuple[float, str] = (math.inf, "")
        if self.created_before is not None:
            bound = (self.created_before, "")
        if cursor is not None:
            bound = min(bound, decode_cursor(self, cursor))
        return RunQuery(statuses=self.statuses, workflow=self.workflow, version=self.version,
                        parent_id=self.parent, queue=self.queue, tags=self.tags,
                        after_at=-math.inf if self.created_after is None else
                        self.created_after, before_at=bound[0], before_id=bound[1],
                        limit=limit)

    def describe(self) -> dict[str, Any]:
        """The filters that are set, for a message."""
        out: dict[str, Any] = {}
        if self.statuses:
            out["status"] = list(self.statuses)
        for name in ("workflow", "version", "parent", "queue", "created_after",
                     "created_before"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


def encode_cursor(where: RunFilter, created_at: float, run_id: str) -> str:
    """The cursor of the page after the run (``created_at``, ``run_id``) under ``where``."""
    raw = json.dumps([where.fingerprint(), created_at, run_id], separators=(",", ":"))
    return f"{_CURSOR_VERSION}.{base64.urlsafe_b64encode(raw.encode()).decode().rstrip('=')}"


def decode_cursor(where: RunFilter, cursor: object) -> tuple[float, str]:
    """The key a cursor continues after; ``InvalidCursor`` if it is not a cursor or belongs
    to a query with other filters."""
    if not isinstance(cursor, str):
        raise InvalidCursor(f"a cursor must be a string, not {type(cursor).__name__}")
    version, _, body = cursor.partition(".")
    try:
        if version != _CURSOR_VERSION:
            raise ValueError(version)
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        fingerprint, created_at, run_id = data
        if not (isinstance(fingerprint, str) and isinstance(run_id, str)
                and isinstance(created_at, int | float) and not isinstance(created_at, bool)
                and math.isfinite(created_at)):
            raise ValueError(data)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        shown = cursor if len(cursor) <= 60 else cursor[:57] + "..."
        raise InvalidCursor(f"{shown!r} is not a cursor of list_runs: pass the next_cursor "
                            "of a page, unchanged") from None
    if fingerprint != where.fingerprint():
        raise InvalidCursor("this cursor continues a query with other filters: pass the "
                            "same filters as the query that returned it, or no cursor to "
                            "start from the newest run")
    return float(created_at), run_id
