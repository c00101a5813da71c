"""The compiler behind :mod:`perdure.codec`: a type hint becomes an (encoder, decoder) pair.

Internal package; the public surface is :mod:`perdure.codec`.

An encoder turns a value into *JSON data* (``dict``/``list``/``str``/``int``/``float``/``bool``/
``None``) and a decoder turns that data back into a value of the hinted type. Each hint is compiled
once into a :class:`~perdure.typecodec.codec.Codec` and cached, so the per-value work is a few
closure calls.

Two encodings coexist:

* **Typed** (the hint says what the value is): the JSON holds no type information beyond what
  the hint cannot tell, e.g. ``datetime`` is an ISO string, a dataclass is an object of fields.
* **Self-describing** (hint ``Any``, ``object`` or none): plain JSON scalars, lists and
  str-keyed dicts stay as they are; everything else becomes a tagged object
  ``{"$perdure": "<tag>", "v": ...}`` (see :mod:`~perdure.typecodec.tagged`).

Errors are :class:`~perdure.typecodec.errors.PathError`, a
:class:`~perdure.errors.SerializationError` that records the path into the value on its way up,
so the public entry points can say where the problem is.

Modules, from the bottom up: ``errors`` (PathError), ``codec`` (the Codec record, JSON kinds, the
reserved key), ``hints`` (resolving and rewriting hints), ``cache`` (codec_for), ``items``
(elements of containers), ``scalars``, ``pydantic_io``, ``tagged`` (the encoding under Any),
``choices`` (Literal, Enum), ``containers``, ``unions``, ``records`` (dataclasses, named tuples,
TypedDict, pydantic models) and ``compile`` (which codec a hint gets), which registers itself
with ``cache`` when this package is imported.
"""

from perdure.typecodec import compile as _compile  # noqa: F401 - installs the compiler
from perdure.typecodec.cache import codec_for
from perdure.typecodec.codec import RESERVED, Codec
from perdure.typecodec.errors import PathError
from perdure.typecodec.hints import resolve_hints, resolve_hints_status
from perdure.typecodec.tagged import dec_any, enc_any

__all__ = [
    "RESERVED", "Codec", "PathError", "codec_for", "dec_any", "enc_any", "resolve_hints",
    "resolve_hints_status",
]
