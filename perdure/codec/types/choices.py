"""Codecs of hints that allow a fixed set of values: ``Literal`` and ``Enum`` classes.

Both store the value self-describingly, so any value type works, and check it is one of the
allowed values when decoding.
"""

from __future__ import annotations

import enum
from typing import Any

from perdure.codec.types.base import ANY_KIND, Codec
from perdure.codec.types.errors import bad_data, mismatch
from perdure.codec.types.tagged import dec_any, enc_any, kind_of_encoded


def literal_codec(values: tuple[Any, ...]) -> Codec:
    name = "Literal[" + ", ".join(repr(v) for v in values) + "]"
    # (type, value) pairs: Literal[1] must not accept True, though 1 == True.
    allowed = {(type(v), v) for v in values}
    kinds = 0
    for v in values:
        kinds |= kind_of_encoded(v)

    def check(value: object) -> bool:
        try:
            return (type(value), value) in allowed
        except TypeError:  # unhashable
            return False

    def enc(v: object) -> object:
        if check(v):
            return enc_any(v)
        raise mismatch(name, v)

    def dec(d: object) -> object:
        value = dec_any(d)
        if check(value):
            return value
        raise bad_data(name, d)

    return Codec(name, enc, dec, kinds, tuple({type(v) for v in values}))


def enum_codec(cls: type[enum.Enum]) -> Codec:
    """An enum member is stored as its value (encoded self-describingly, so any value type
    works) and looked up by value on decode."""
    name = cls.__qualname__
    kinds = 0
    for member in cls:
        kinds |= kind_of_encoded(member.value)

    def enc(v: object) -> object:
        if isinstance(v, cls):
            return enc_any(v.value)
        raise mismatch(name, v)

    def dec(d: object) -> object:
        try:
            return cls(dec_any(d))
        except ValueError as e:
            raise bad_data(name, d) from e

    return Codec(name, enc, dec, kinds or ANY_KIND, (cls,))
