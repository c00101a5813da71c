"""Checks for the values users hand to Perdure: durations and names.

Every layer validates at the call that received a value, so a bad one is refused with
:class:`~perdure.errors.InvalidConfiguration` there, identically on every backend, instead of
surfacing later as a driver error, a hung wait or a failed run. Durations must be finite
(``nan`` compares false with everything, so ``nan <= 0`` lets it through ordinary checks, and an
infinite sleep overflows every date type) and at most :data:`MAX_SECONDS`; names must be text
that every backend stores as given (no NUL, which PostgreSQL refuses and SQLite's C strings
truncate, and no lone surrogate, which no UTF-8 database can hold).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta

from perdure.errors import InvalidConfiguration

__all__ = ["MAX_SECONDS", "MAX_TAGS", "MAX_TAG_KEY", "MAX_TAG_VALUE", "age", "count", "name",
           "number", "run_id", "seconds", "tags", "text"]

#: the longest duration Perdure accepts (about a century): any due time computed from it stays
#: a representable date, and no real wait, lease or back-off comes near it
MAX_SECONDS = 100 * 366 * 86400.0


def number(value: object, what: str) -> float:
    """``value`` (an int or a float, not a bool) as a finite float."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidConfiguration(f"{what} must be a number, not {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        result = math.inf
    if not math.isfinite(result):
        raise InvalidConfiguration(f"{what} must be a finite number, not {value!r}")
    return result


def seconds(value: object, what: str, *, zero: bool = False, negative: bool = False,
            timedeltas: bool = False) -> float:
    """``value`` (a number of seconds, or a ``timedelta`` if ``timedeltas``) as a float.

    It must be finite and at most :data:`MAX_SECONDS`, and positive (``zero``: or zero;
    ``negative``: any sign); otherwise ``InvalidConfiguration`` names ``what``.
    """
    if timedeltas and isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = number(value, f"{what} (in seconds)")
    else:
        kinds = "a timedelta or a number of seconds" if timedeltas else "a number of seconds"
        raise InvalidConfiguration(f"{what} must be {kinds}, not {type(value).__name__}")
    if abs(result) > MAX_SECONDS:
        raise InvalidConfiguration(f"{what} must be at most {MAX_SECONDS:.0f} seconds (about a "
                                   f"century), not {value!r}")
    if not negative and (result < 0 or (result == 0 and not zero)):
        sign = "must not be negative" if zero else "must be positive"
        raise InvalidConfiguration(f"{what} {sign} (got {value!r})")
    return result


def count(value: object, what: str, *, minimum: int = 1, maximum: int = 2**31 - 1) -> int:
    """``value`` as an int between ``minimum`` and ``maximum`` (a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or not minimum <= value <= maximum:
        raise InvalidConfiguration(f"{what} must be an int from {minimum} to {maximum}, "
                                   f"not {value!r}")
    return value


def name(value: object, what: str, *, max_length: int | None = None) -> str:
    """``value`` if it is a non-empty string every backend stores unchanged."""
    if not isinstance(value, str) or not value:
        raise InvalidConfiguration(f"{what} must be a non-empty string, not {value!r}")
    if max_length is not None and len(value) > max_length:
        raise InvalidConfiguration(f"{what} must be at most {max_length} characters, not "
                                   f"{len(value)}: {value[:40]!r}...")
    if "\x00" in value:
        raise InvalidConfiguration(f"{what} must not contain a NUL character: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidConfiguration(f"{what} must be valid Unicode text (it holds a lone "
                                   f"surrogate): {value!r}") from None
    return value


def run_id(value: object) -> str:
    """A run id as every call that takes one checks it (``name``, at most 255 characters)."""
    return name(value, "a run id", max_length=255)


#: at most this many tags on one run
MAX_TAGS = 32
#: the longest tag key, in characters
MAX_TAG_KEY = 64
#: the longest tag value, in characters
MAX_TAG_VALUE = 256


def text(value: object, what: str, *, max_length: int) -> str:
    """``value`` if it is a string (possibly empty) every backend stores unchanged."""
    if not isinstance(value, str):
        raise InvalidConfiguration(f"{what} must be a string, not {type(value).__name__}")
    return name(value, what, max_length=max_length) if value else value


def tags(value: object, what: str = "tags", *, removals: bool = False) -> dict[str, str | None]:
    """``value`` as a dict of tags: at most :data:`MAX_TAGS` string keys (1 to
    :data:`MAX_TAG_KEY` characters) to string values (at most :data:`MAX_TAG_VALUE`), none
    holding a NUL or a lone surrogate. With ``removals``, a value may be None (remove the
    tag)."""
    if not isinstance(value, Mapping):
        raise InvalidConfiguration(f"{what} must be a mapping of str to str, not "
                                   f"{type(value).__name__}")
    if len(value) > MAX_TAGS:
        raise InvalidConfiguration(f"{what}: at most {MAX_TAGS} tags, not {len(value)}")
    out: dict[str, str | None] = {}
    for key, val in value.items():
        name(key, f"a tag key in {what}", max_length=MAX_TAG_KEY)
        if val is None and removals:
            out[key] = None
            continue
        out[key] = text(val, f"the value of tag {key!r}", max_length=MAX_TAG_VALUE)
    return out


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNITS = {"w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def age(value: object, what: str = "the age") -> timedelta:
    """A duration written for a person: ``30d``, ``12h``, ``90m``, ``45s``, ``2w``, or a sum
    such as ``1d12h`` (a ``timedelta`` passes through). At least zero, at most
    :data:`MAX_SECONDS`; anything else raises ``InvalidConfiguration``."""
    if isinstance(value, timedelta):
        return timedelta(seconds=seconds(value, what, zero=True, timedeltas=True))
    if not isinstance(value, str):
        raise InvalidConfiguration(f"{what} must be a duration such as '30d', not "
                                   f"{type(value).__name__}")
    compact = value.strip().replace(" ", "")
    parts = _AGE.findall(compact)
    if not compact or "".join(n + u for n, u in parts).lower() != compact.lower():
        raise InvalidConfiguration(
            f"{what} {value!r} is not a duration: write a number and a unit (w, d, h, m, s), "
            "such as 30d, 12h, 90m or 1d12h")
    total = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    return timedelta(seconds=seconds(total, what, zero=True))
