"""The runs list's filters: read from the page's query string, checked by the engine.

Everything a filter holds is a filter (statuses, names, tags, times, a cursor): no payload
and no secret ever goes into a URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from perdure.errors import InvalidConfiguration
from perdure.records import RunStatus

__all__ = ["DEFAULT_LIMIT", "RunsQuery"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _time(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidConfiguration(f"{what}: {text!r} is not a time like "
                                   "2026-11-28T21:30 (UTC)") from None
    # A time without a zone is UTC: the dashboard shows every time in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _tags(text: str) -> dict[str, str] | None:
    if not text.strip():
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip():
            raise InvalidConfiguration(f"tags: write KEY=VALUE pairs separated by commas, "
                                       f"not {part.strip()!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """The filters of the runs page as given (text), for the form and the links."""

    statuses: tuple[str, ...] = ()
    workflow: str = ""
    version: str = ""
    tags: str = ""
    created_after: str = ""
    created_before: str = ""
    parent: str = ""
    limit: int = DEFAULT_LIMIT
    queue: str = ""
    cursor: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Any) -> RunsQuery:
        """From a Starlette ``QueryParams`` (``getlist`` for the statuses)."""
        def one(name: str) -> str:
            return str(params.get(name, "")).strip()[:1000]

        limit_text = one("limit")
        try:
            limit = int(limit_text) if limit_text else DEFAULT_LIMIT
        except ValueError:
            raise InvalidConfiguration(f"limit must be a number, not {limit_text!r}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidConfiguration(f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
        statuses = tuple(s for s in params.getlist("status") if s)
        return cls(statuses, one("workflow"), one("version"), one("tags"),
                   one("created_after"), one("created_before"), one("parent"), limit,
                   one("queue"), one("cursor"))

    def kwargs(self) -> dict[str, Any]:
        """The arguments of ``engine.list_runs`` (the engine checks them)."""
        return {
            "status": list(self.statuses) or None,
            "workflow": self.workflow or None, "version": self.version or None,
            "tags": _tags(self.tags),
            "created_after": _time(self.created_after, "created after"),
            "created_before": _time(self.created_before, "created before"),
            "parent": self.parent or None,
            "queue": self.queue or None,
        }

    def link(self, *, cursor: str | None = None) -> str:
        """The runs page's URL with these filters (and ``cursor``)."""
        pairs: list[tuple[str, str]] = [("status", s) for s in self.statuses]
        for name in ("workflow", "version", "queue", "tags", "created_after", "created_before",
                     "parent"):
            if getattr(self, name):
                pairs.append((name, getattr(self, name)))
        if self.limit != DEFAULT_LIMIT:
            pairs.append(("limit", str(self.limit)))
        if cursor:
            pairs.append(("cursor", cursor))
        return "/runs" + (f"?{urlencode(pairs)}" if pairs else "")

    @property
    def filtered(self) -> bool:
        """Whether any filter is set."""
        return bool(self.statuses or self.workflow or self.version or self.tags
                    or self.created_after or self.created_before or self.parent or self.queue)


def status_choices() -> Sequence[str]:
    """Every status, in life-cycle order."""
    return [s.value for s in RunStatus]
