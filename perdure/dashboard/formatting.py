"""How the dashboard writes times, durations and payloads for a person (Jinja2 filters).

Times are shown relative ("3 min ago") with the exact UTC time on hover: relative is what a
person scans for, exact is what they paste into a ticket.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

__all__ = ["duration", "exact", "pretty_json", "relative"]


def _ts(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, datetime) else float(value)


def exact(value: datetime | float | None) -> str:
    """UTC, ISO 8601 with milliseconds and a ``Z`` (as the CLI prints it); ``-`` for None."""
    ts = _ts(value)
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 5 s``, ``3 h 2 min``, ``2 d 4 h``."""
    if seconds is None:
        return "-"
    s = abs(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    parts = ((s // 60, "min", s % 60, "s") if s < 3600 else
             (s // 3600, "h", s % 3600 // 60, "min") if s < 86400 else
             (s // 86400, "d", s % 86400 // 3600, "h"))
    big, unit, small, small_unit = parts
    return f"{int(big)} {unit}" + (f" {int(small)} {small_unit}" if int(small) else "")


def relative(value: datetime | float | None, now: float) -> str:
    """``3 min ago`` or ``in 20 s``; ``-`` for None."""
    ts = _ts(value)
    if ts is None:
        return "-"
    delta = now - ts
    if abs(delta) < 1:
        return "just now"
    text = duration(delta).split(" ")
    short = " ".join(text[:2])
    return f"{short} ago" if delta > 0 else f"in {short}"


def pretty_json(text: str | None) -> str:
    """Stored JSON text indented for reading; text that is not JSON as it is."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
