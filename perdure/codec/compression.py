"""zstd compression of stored payloads (the ``zstandard`` package, extra ``perdure[zstd]``).

JSON compresses well (often 5-10x), and compression must come before encryption (ciphertext
does not compress), so :class:`~perdure.codec.encryption.Encrypted` compresses inside itself
when asked (``compress_above=``); :class:`Compressed` is the codec for compression alone.
"""

from __future__ import annotations

from types import ModuleType

from perdure.codec.envelope import decode_steps
from perdure.errors import InvalidConfiguration, PayloadUnavailable

__all__ = ["Compressed", "compress", "decompress", "zstandard"]

#: compression levels zstd accepts (negative ones trade ratio for speed)
_LEVELS = range(-7, 23)


def zstandard() -> ModuleType:
    """The ``zstandard`` module, or an error naming the extra that installs it."""
    try:
        import zstandard as zstd
    except ImportError:
        raise InvalidConfiguration(
            "zstd compression of payloads needs the 'zstandard' package: "
            "pip install 'perdure[zstd]'") from None
    return zstd


def compress(data: bytes, level: int = 3) -> bytes:
    """``data`` as one zstd frame (with its size in the header)."""
    out: bytes = zstandard().ZstdCompressor(level=level).compress(data)
    return out


def decompress(data: bytes) -> bytes:
    """The bytes of a zstd frame written by :func:`compress`."""
    try:
        zstd = zstandard()
    except InvalidConfiguration as exc:  # reading needs it too: a deployment matter
        raise PayloadUnavailable(f"this payload is compressed: {exc}") from None
    try:
        out: bytes = zstd.ZstdDecompressor().decompress(data)
    except zstd.ZstdError as exc:
        raise PayloadUnavailable(f"a compressed payload is damaged: {exc}") from None
    return out


def check_level(level: object) -> int:
    """``level`` if zstd accepts it, else ``InvalidConfiguration``."""
    if isinstance(level, bool) or not isinstance(level, int) or level not in _LEVELS:
        raise InvalidConfiguration(f"a zstd level is an int from -7 to 22, not {level!r}")
    return level


def check_threshold(name: str, value: object) -> int:
    """A compression threshold: a non-negative int of bytes."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidConfiguration(f"{name} must be a non-negative int (bytes), not {value!r}")
    return value


def maybe_compress(data: bytes, above: int | None, level: int) -> tuple[bool, bytes]:
    """``(True, compressed)`` when ``data`` is longer than ``above`` and compressing shrinks
    it, else ``(False, data)``."""
    if above is None or len(data) <= above:
        return False, data
    packed = compress(data, level)
    return (True, packed) if len(packed) < len(data) else (False, data)


class Compressed:
    """A payload codec that compresses payloads longer than ``above`` bytes with zstd at
    ``level``: ``Engine(codec=perdure.Compressed())``. Smaller payloads stay plain JSON.

    Needs the ``zstandard`` package (``pip install 'perdure[zstd]'``). To encrypt as well, use
    ``perdure.Encrypted(..., compress_above=...)`` instead, which compresses before encrypting.
    """

    def __init__(self, *, above: int = 1024, level: int = 3) -> None:
        self.above = check_threshold("above", above)
        self.level = check_level(level)
        zstandard()  # fail here, at configuration, if the package is missing

    def __repr__(self) -> str:
        return f"Compressed(above={self.above}, level={self.level})"

    def encode(self, data: bytes) -> tuple[str, bytes]:
        """``("zstd", compressed)`` above the threshold (when it helps), else ``("", data)``."""
        packed, out = maybe_compress(data, self.above, self.level)
        return ("zstd" if packed else ""), out

    def decode(self, label: str, data: bytes) -> bytes:
        """Decompress what :meth:`encode` compressed."""
        return decode_steps(label, data, None)
