"""Payload size limits: how large a stored value may be, measured and reported for a person.

A payload's size is the length of its JSON text in UTF-8, before any compression or
encryption: the number a user can predict from the value, the same whatever codec the engine
is configured with.
"""

from __future__ import annotations

from perdure.errors import InvalidConfiguration, PayloadTooLarge

__all__ = ["DEFAULT_MAX_PAYLOAD", "DEFAULT_OFFLOAD_ABOVE", "check_size", "human_size",
           "payload_size", "positive_size", "size_over", "too_large"]

#: ``Engine(max_payload=...)`` by default: Temporal's error threshold for one payload
DEFAULT_MAX_PAYLOAD = 2 * 1024 * 1024
#: ``Engine(offload_above=...)`` by default, when a blob store is configured
DEFAULT_OFFLOAD_ABOVE = 256 * 1024


def payload_size(text: str) -> int:
    """The size of JSON ``text`` in bytes (UTF-8), without copying ASCII text."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def size_over(text: str, limit: int) -> int | None:
    """The size of ``text`` if it is over ``limit`` bytes, else None, without encoding a text
    that cannot be over (UTF-8 takes at most 4 bytes a character)."""
    if len(text) * 4 <= limit:
        return None
    size = payload_size(text)
    return size if size > limit else None


def human_size(n: int) -> str:
    """``n`` bytes for a person: ``20.0 MiB (20,971,520 bytes)``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def too_large(what: str, size: int, limit: int, detail: str = "") -> PayloadTooLarge:
    """The error for payload ``what`` of ``size`` bytes over ``limit``."""
    return PayloadTooLarge(
        f"{what} is {human_size(size)}, over the max_payload of {human_size(limit)}{detail}; "
        "pass a reference (a URL, a file path, a key) instead, or raise "
        "Engine(max_payload=...) together with Engine(blobs=...) so that large payloads are "
        "kept out of the journal", what=what, size=size, limit=limit)


def check_size(text: str, limit: int | None, what: str) -> None:
    """Raise :class:`~perdure.errors.PayloadTooLarge` if ``text`` is over ``limit`` bytes."""
    if limit is not None:
        size = size_over(text, limit)
        if size is not None:
            raise too_large(what, size, limit)


def positive_size(name: str, value: object) -> int:
    """``value`` if it is a positive int (a number of bytes), else ``InvalidConfiguration``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidConfiguration(f"{name} must be a positive int (bytes), not {value!r}")
    return value
