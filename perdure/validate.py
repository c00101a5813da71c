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
from datetime import timedelta

from perdure.errors import InvalidConfiguration

__all__ = ["MAX_SECONDS", "count", "name", "number", "seconds"]

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
