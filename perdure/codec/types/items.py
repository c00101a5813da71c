"""The elements of lists, sets and mappings, encoded and decoded one by one.

Shared by the typed container codecs and the self-describing encoding. Loops rather than
comprehensions: on failure the index or key must go into the error's path.
"""

from __future__ import annotations

import json
import typing
from collections import abc
from collections.abc import Callable, Iterable
from typing import Any

from perdure.codec.types.base import Decoder, Encoder
from perdure.codec.types.errors import PathError, bad_data, show


def map_items(v: Iterable[Any], fn: Encoder | Decoder) -> list[object]:
    """``fn`` applied to each element of ``v`` (encoding or decoding), as a list; an error
    names the element's index in its path."""
    out: list[object] = []
    for i, x in enumerate(v):
        try:
            out.append(fn(x))
        except PathError as e:
            e.path.append(f"[{i}]")
            raise
    return out


enc_items = dec_items = map_items


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def enc_set_items(v: Iterable[Any], enc: Encoder) -> list[object]:
    """A set's elements in a deterministic order: set iteration order differs between processes
    (str hashes are salted), and the same value must always give the same text."""
    out: list[object] = []
    for x in v:
        try:
            out.append(enc(x))
        except PathError as e:
            e.path.append(f"{{element {show(x)}}}")
            raise
    types_seen = {type(e) for e in out}
    if types_seen <= {str} or types_seen <= {int, float}:
        out.sort(key=typing.cast(Callable[[object], Any], identity))
    else:
        out.sort(key=_canonical)
    return out


def identity(x: object) -> object:
    """``x`` itself: the key codec of str keys, and the sort key of plain scalars."""
    return x


def key_segment(k: object) -> str:
    """The error-path segment of a mapping key."""
    return f"[{show(k)}]"


def enc_pairs(v: abc.Mapping[Any, Any], kenc: Encoder, venc: Encoder) -> list[object]:
    """A mapping as a list of ``[key, value]`` pairs."""
    out: list[object] = []
    for k, x in v.items():
        try:
            ek = kenc(k)
        except PathError as e:
            e.path.append(f"<key {show(k)}>")
            raise
        try:
            out.append([ek, venc(x)])
        except PathError as e:
            e.path.append(key_segment(k))
            raise
    return out


def dec_pairs(d: object, kdec: Decoder, vdec: Decoder, what: str) -> dict[Any, Any]:
    """A dict from a list of ``[key, value]`` pairs; ``what`` names it in errors."""
    if type(d) is not list:
        raise bad_data(what, d)
    out: dict[Any, Any] = {}
    for i, pair in enumerate(d):
        if type(pair) is not list or len(pair) != 2:
            raise bad_data(f"key/value pair of {what}", pair)
        try:
            k = kdec(pair[0])
            out[k] = vdec(pair[1])
        except PathError as e:
            e.path.append(f"[{i}]")
            raise
        except TypeError as e:  # the decoded key is unhashable
            raise bad_data(f"key of {what}", pair[0]) from e
    return out


def enc_object(v: abc.Mapping[str, Any], kenc: Encoder, venc: Encoder) -> dict[str, object]:
    """A mapping whose keys encode to strings, as a JSON object."""
    out: dict[str, object] = {}
    for k, x in v.items():
        try:
            ek = kenc(k)
        except PathError as e:
            e.path.append(f"<key {show(k)}>")
            raise
        try:
            out[typing.cast(str, ek)] = venc(x)
        except PathError as e:
            e.path.append(key_segment(k))
            raise
    return out


def dec_object(d: dict[str, Any], kdec: Decoder, vdec: Decoder) -> dict[Any, Any]:
    """A dict from a JSON object."""
    out: dict[Any, Any] = {}
    for k, x in d.items():
        try:
            out[kdec(k)] = vdec(x)
        except PathError as e:
            e.path.append(key_segment(k))
            raise
    return out
