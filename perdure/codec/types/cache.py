"""codec_for: the codec of a type hint, compiled on first use and cached.

The compiler itself is :mod:`perdure.codec.types.compile`, which needs every kind of codec, while
most kinds of codec need codec_for for their parts. So the compiler registers itself here with
:func:`install` when the package is imported, and nothing but the package imports it.

Also here: the re-entrant lock that compilation holds (compiling a hint compiles its parts),
which codecs built lazily share.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from perdure.codec.types.base import Codec


def _not_installed(hint: object) -> Codec:
    raise RuntimeError("no compiler: import perdure.codec.types, which installs it")


#: The compiler codec_for calls on a cache miss; set by :func:`install`.
_build: Callable[[object], Codec] = _not_installed


def install(build: Callable[[object], Codec]) -> None:
    """Make ``build`` the compiler behind :func:`codec_for`."""
    global _build
    _build = build


_CACHE: dict[object, Codec] = {}
LOCK = threading.RLock()
CACHE_LIMIT = 4096


def codec_for(hint: object) -> Codec:
    """The codec of ``hint``, compiled on first use and cached.

    The cache key includes ``repr(hint)`` for non-class hints because typing treats
    ``Union[A, B]`` and ``Union[B, A]`` as equal, while member order is meaningful here.
    Unhashable hints (``Annotated`` with unhashable metadata) are compiled each time.
    """
    try:
        key: object = hint if isinstance(hint, type) else (hint, repr(hint))
        codec = _CACHE.get(key)
    except TypeError:
        with LOCK:
            return _build(hint)
    if codec is not None:
        return codec
    with LOCK:
        codec = _CACHE.get(key)
        if codec is None:
            codec = _build(hint)
            if len(_CACHE) >= CACHE_LIMIT:  # runaway dynamic hints: start over, never grow
                _CACHE.clear()
            _CACHE[key] = codec
        return codec
