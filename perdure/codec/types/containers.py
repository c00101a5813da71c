"""Codecs of container hints: lists and sequences, tuples, dicts and mappings, sets.

A dict whose keys always encode to strings is a JSON object; other keys give a list of
``[key, value]`` pairs. A set's elements are sorted, so the same set always gives the same text.
"""

from __future__ import annotations

from typing import Any

from perdure.codec.types.base import ARRAY, OBJECT, RESERVED, STRING, Codec, payload
from perdure.codec.types.errors import PathError, bad_data, mismatch
from perdure.codec.types.hints import hint_name
from perdure.codec.types.items import (
    dec_items,
    dec_object,
    dec_pairs,
    enc_items,
    enc_object,
    enc_pairs,
    enc_set_items,
    identity,
)
from perdure.codec.types.tagged import ANY, dec_any, enc_any_mapping


def sequence_codec(hint: object, item: Codec, accepts: tuple[type, ...]) -> Codec:
    name = hint_name(hint)
    ienc, idec = item.enc, item.dec
    exact = accepts == (list,)

    def enc(v: object) -> object:
        if exact:
            if not isinstance(v, list):
                raise mismatch(name, v)
        elif isinstance(v, str | bytes | bytearray) or not isinstance(v, accepts):
            # str is a Sequence[str], but turning it into a list of characters is never meant.
            raise mismatch(name, v)
        return enc_items(v, ienc)  # type: ignore[arg-type]

    def dec(d: object) -> object:
        if type(d) is list:
            return dec_items(d, idec)
        raise bad_data(name, d)

    return Codec(name, enc, dec, ARRAY, accepts)


def var_tuple_codec(item: Codec) -> Codec:
    name = f"tuple[{item.name}, ...]"
    ienc, idec = item.enc, item.dec

    def enc(v: object) -> object:
        if isinstance(v, tuple):
            return enc_items(v, ienc)
        raise mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is list:
            return tuple(dec_items(d, idec))
        raise bad_data(name, d)

    return Codec(name, enc, dec, ARRAY, (tuple,))


def fixed_tuple_codec(hint: object, items: list[Codec]) -> Codec:
    name = hint_name(hint)
    encs = [c.enc for c in items]
    decs = [c.dec for c in items]
    size = len(items)

    def enc(v: object) -> object:
        if not isinstance(v, tuple) or len(v) != size:
            raise mismatch(name, v)
        out: list[object] = []
        for i, (e, x) in enumerate(zip(encs, v, strict=True)):
            try:
                out.append(e(x))
            except PathError as err:
                err.path.append(f"[{i}]")
                raise
        return out

    def dec(d: object) -> object:
        if type(d) is not list or len(d) != size:
            raise bad_data(name, d)
        out: list[object] = []
        for i, (f, x) in enumerate(zip(decs, d, strict=True)):
            try:
                out.append(f(x))
            except PathError as err:
                err.path.append(f"[{i}]")
                raise
        return tuple(out)

    return Codec(name, enc, dec, ARRAY, (tuple,))


def mapping_codec(hint: object, key: Codec, value: Codec, accepts: type) -> Codec:
    """A dict codec. Keys that always encode to JSON strings give a JSON object; keys of any
    type give an object when they happen to be plain strings and tagged pairs otherwise; other
    keys (int, tuple, datetime...) give a list of ``[key, value]`` pairs."""
    name = hint_name(hint)
    if key.kinds == STRING:
        return _object_mapping(name, key, value, accepts)
    if key is ANY:
        return _any_key_mapping(name, value, accepts)
    kenc, kdec, venc, vdec = key.enc, key.dec, value.enc, value.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return enc_pairs(v, kenc, venc)  # type: ignore[arg-type]
        raise mismatch(name, v)

    def dec(d: object) -> object:
        return dec_pairs(d, kdec, vdec, name)

    return Codec(name, enc, dec, ARRAY, (accepts,))


def _object_mapping(name: str, key: Codec, value: Codec, accepts: type) -> Codec:
    kenc, kdec, venc, vdec = key.enc, key.dec, value.enc, value.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return enc_object(v, kenc, venc)  # type: ignore[arg-type]
        raise mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is dict:
            return dec_object(d, kdec, vdec)
        raise bad_data(name, d)

    return Codec(name, enc, dec, OBJECT, (accepts,))


def _any_key_mapping(name: str, value: Codec, accepts: type) -> Codec:
    venc, vdec = value.enc, value.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return enc_any_mapping(v, venc)  # type: ignore[arg-type]
        raise mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is dict:
            if RESERVED not in d:
                return dec_object(d, identity, vdec)
            if d[RESERVED] == "dict":
                return dec_pairs(payload(d), dec_any, vdec, name)
        raise bad_data(name, d)

    return Codec(name, enc, dec, OBJECT, (accepts,))


def set_codec(hint: object, item: Codec, result: type[set[Any]] | type[frozenset[Any]],
         accepts: tuple[type, ...]) -> Codec:
    name = hint_name(hint)
    ienc, idec = item.enc, item.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return enc_set_items(v, ienc)  # type: ignore[arg-type]
        raise mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is list:
            try:
                return result(dec_items(d, idec))
            except TypeError as e:  # an unhashable element
                raise bad_data(name, d) from e
        raise bad_data(name, d)

    return Codec(name, enc, dec, ARRAY, accepts)
