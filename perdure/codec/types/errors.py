"""PathError, the codec's one failure, and the messages it carries.

A PathError records the path from the top-level value down to the failing part while it
unwinds (each container appends its own segment), so :mod:`perdure.codec.functions` can say
where the problem is.
"""

from __future__ import annotations

import reprlib

from perdure.errors import SerializationError


class PathError(SerializationError):
    """A codec failure, with the path from the top-level value down to the failing part."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Segments such as ``.items`` or ``[2]``, innermost first (appended while unwinding).
        self.path: list[str] = []

    def where(self) -> str:
        """The path as text, e.g. ``field 'items'[2].sku``; empty for the top-level value."""
        if not self.path:
            return ""
        segments = self.path[::-1]
        if segments[0].startswith("."):
            segments[0] = f"field {segments[0][1:]!r}"
        return "".join(segments)


def show(value: object) -> str:
    """A short repr of ``value`` for an error message."""
    return reprlib.repr(value)


def mismatch(expected: str, value: object) -> PathError:
    """The error for a value to encode that is not what the hint says."""
    return PathError(f"expected {expected}, got {type(value).__qualname__} {show(value)}")


def bad_data(expected: str, data: object) -> PathError:
    """The error for stored data that cannot be decoded as ``expected``."""
    return PathError(f"stored data {show(data)} is not a valid {expected}")
