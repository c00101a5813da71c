"""The compiler behind :mod:`perdure.codec.functions`: a type hint becomes an encoder and a
decoder.

Internal package; the public surface is :mod:`perdure.codec.functions`.

An encoder turns a value into *JSON data* (``dict``/``list``/``str``/``int``/``float``/``bool``/
``None``) and a decoder turns that data back into a value of the hinted type. Each hint is compiled
once into a :class:`~perdure.codec.types.base.Codec` and cached, so the per-value work is a few
closure calls.

Two encodings coexist:

* **Typed** (the hint says what the value is): the JSON holds no type information beyond what
  the hint cannot tell, e.g. ``datetime`` is an ISO string, a dataclass is an object of fields.
* **Self-describing** (hint ``Any``, ``object`` or none): plain JSON scalars, lists and
  str-keyed dicts stay as they are; everything else becomes a tagged object
  ``{"$perdure": "<tag>", "v": ...}`` (see :mod:`~perdure.codec.types.tagged`).

Errors are :class:`~perdure.codec.types.errors.PathError`, a
:class:`~perdure.errors.SerializationError` that records the path into the value on its way up,
so the public entry points can say where the problem is.

Modules, from the bottom up: ``errors`` (PathError), ``codec`` (the Codec record, JSON kinds, the
reserved key), ``hints`` (resolving and rewriting hints), ``cache`` (codec_for), ``items``
(elements of containers), ``scalars``, ``pydantic_io``, ``tagged`` (the encoding under Any),
``choices`` (Literal, Enum), ``containers``, ``unions``, ``records`` (dataclasses, named tuples,
TypedDict, pydantic models) and ``compile`` (which codec a hint gets), which registers itself
with ``cache`` when this package is imported.
"""

from perdure.codec.types import compile as _compile  # noqa: F401 - installs the compiler
from perdure.codec.types.base import RESERVED, Codec
from perdure.codec.types.cache import codec_for
from perdure.codec.types.errors import PathError
from perdure.codec.types.hints import resolve_hints, resolve_hints_status
from perdure.codec.types.tagged import dec_any, enc_any

__all__ = [
    "RESERVED", "Codec", "PathError", "codec_for", "dec_any", "enc_any", "resolve_hints",
    "resolve_hints_status",
]
