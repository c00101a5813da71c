"""The self-describing encoding, used under ``Any``, ``object`` or no hint.

Plain JSON scalars, lists and str-keyed dicts stay as they are; everything else becomes a tagged
object ``{"$perdure": "<tag>", "v": ...}`` (classes add ``"t": "module:qualname"``, which
decoding imports and checks is such a class before using it). A user dict that holds the
reserved key itself is escaped as a ``"dict"`` tag of key/value pairs, so decoding is never
ambiguous.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import pathlib
import sys
import typing
import uuid
from collections import abc
from collections.abc import Callable
from typing import Any

from perdure.codec.types.base import ANY_KIND, KIND_OF, RESERVED, Codec, Encoder, payload
from perdure.codec.types.cache import CACHE_LIMIT, codec_for
from perdure.codec.types.errors import PathError, bad_data, show
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
from perdure.codec.types.pydantic_io import (
    is_pydantic_class,
    is_pydantic_class_importing,
    pydantic_dump,
    pydantic_load,
)
from perdure.codec.types.scalars import (
    b64,
    dec_date,
    dec_datetime,
    dec_decimal,
    dec_nonfinite,
    dec_time,
    dec_timedelta,
    dec_uuid,
    enc_timedelta,
    nonfinite,
    path_codec,
    temporal,
    unb64,
)
from perdure.errors import SerializationError


def enc_any(v: object) -> object:
    """Encode ``v`` with no hint: JSON values as they are, everything else tagged."""
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    encoder = _ANY_ENCODERS.get(t)
    if encoder is not None:
        return encoder(v)
    return enc_any_object(v)


def _enc_any_float(v: float) -> object:
    return v if v - v == 0.0 else nonfinite(v)


def enc_any_mapping(v: abc.Mapping[Any, Any], venc: Encoder = enc_any) -> object:
    if RESERVED not in v and all(type(k) is str for k in v):
        return enc_object(v, identity, venc)
    # Non-str keys, or a user key that is our reserved key: key/value pairs under a tag.
    return {RESERVED: "dict", "v": enc_pairs(v, enc_any, venc)}


def _tagged(tag: str, data: object) -> dict[str, object]:
    return {RESERVED: tag, "v": data}


_PATH_CLASSES: dict[str, type[pathlib.PurePath]] = {
    c.__name__: c for c in (pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
                            pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath)
}


def _enc_any_path(v: pathlib.PurePath) -> object:
    return {RESERVED: "path", "t": type(v).__name__, "v": str(v)}


_ANY_ENCODERS: dict[type, Callable[[Any], object]] = {
    float: _enc_any_float,
    list: lambda v: enc_items(v, enc_any),
    dict: enc_any_mapping,
    tuple: lambda v: _tagged("tuple", enc_items(v, enc_any)),
    set: lambda v: _tagged("set", enc_set_items(v, enc_any)),
    frozenset: lambda v: _tagged("frozenset", enc_set_items(v, enc_any)),
    bytes: lambda v: _tagged("bytes", b64(v)),
    bytearray: lambda v: _tagged("bytearray", b64(v)),
    dt.datetime: lambda v: _tagged("datetime", temporal(v)),
    dt.date: lambda v: _tagged("date", v.isoformat()),
    dt.time: lambda v: _tagged("time", temporal(v)),
    dt.timedelta: lambda v: _tagged("timedelta", enc_timedelta(v)),
    uuid.UUID: lambda v: _tagged("uuid", str(v)),
    decimal.Decimal: lambda v: _tagged("decimal", str(v)),
    **{c: _enc_any_path for c in set(_PATH_CLASSES.values())},
}

# Module path and qualified name of classes already checked to be importable by that name.
_REFS: dict[type, str] = {}


def _class_ref(cls: type) -> str:
    """``module:qualname`` of ``cls``, after checking that name leads back to ``cls``."""
    ref = _REFS.get(cls)
    if ref is not None:
        return ref
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__":
        # It names whatever script runs the decoding process: a worker started with `perdure
        # worker` (or a later run of another script) has no such class there.
        raise PathError(
            f"class {qualname} is defined in __main__ (the script being run), so a worker "
            "cannot import it to decode it (move it to an importable module, or hint the "
            "parameter with the class)")
    if "<locals>" in qualname:
        raise PathError(
            f"{qualname} is defined inside a function, so it cannot be imported to decode it "
            "(move it to module level, or hint the parameter with the class)")
    found: object = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not cls:
        raise PathError(f"class {qualname} cannot be found as {module}.{qualname}")
    ref = f"{module}:{qualname}"
    if len(_REFS) < CACHE_LIMIT:
        _REFS[cls] = ref
    return ref


def enc_any_object(v: object) -> object:
    cls = type(v)
    if isinstance(v, enum.Enum):
        return {RESERVED: "enum", "t": _class_ref(cls), "v": enc_any(v.value)}
    if dataclasses.is_dataclass(cls):
        return {RESERVED: "dataclass", "t": _class_ref(cls), "v": codec_for(cls).enc(v)}
    if isinstance(v, tuple) and hasattr(cls, "_fields"):
        return {RESERVED: "namedtuple", "t": _class_ref(cls), "v": codec_for(cls).enc(v)}
    if is_pydantic_class(cls):
        return {RESERVED: "pydantic", "t": _class_ref(cls), "v": pydantic_dump(v)}
    raise PathError(f"object of type {cls.__qualname__} is not encodable")


def _is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


# What a stored class reference must turn out to be before anything of it is called.
_CLASS_KINDS: dict[str, Callable[[type], bool]] = {
    "enum": lambda cls: issubclass(cls, enum.Enum),
    "dataclass": dataclasses.is_dataclass,
    "namedtuple": _is_namedtuple_class,
    "pydantic": is_pydantic_class_importing,
}


def _import_class(d: dict[str, Any]) -> type:
    kind = d[RESERVED]
    ref = d.get("t")
    if type(ref) is not str or ref.count(":") != 1:
        raise PathError(f"malformed class reference {show(ref)} in stored {kind}")
    module_name, _, qualname = ref.partition(":")
    try:
        found: object = importlib.import_module(module_name)
    except Exception as e:
        raise PathError(f"cannot import {module_name!r} to decode {ref}: {e}") from e
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, type) or not _CLASS_KINDS[kind](found):
        raise PathError(f"{ref} is not a {kind} class; refusing to decode it")
    return found


def _dec_any_class(d: dict[str, Any]) -> object:
    cls = _import_class(d)
    data = payload(d)
    if d[RESERVED] == "enum":
        try:
            return typing.cast(Any, cls)(dec_any(data))
        except ValueError as e:
            raise bad_data(cls.__qualname__, data) from e
    if d[RESERVED] == "pydantic":
        return pydantic_load(cls, data)
    return codec_for(cls).dec(data)


def _dec_any_path(d: dict[str, Any]) -> object:
    cls = _PATH_CLASSES.get(d.get("t"))  # type: ignore[arg-type]
    if cls is None:
        raise bad_data("path", d)
    return path_codec(cls).dec(payload(d))


def _dec_any_dict(d: dict[str, Any]) -> object:
    return dec_pairs(payload(d), dec_any, dec_any, "dict")


def _dec_any_list(d: object) -> list[object]:
    if type(d) is list:
        return dec_items(d, dec_any)
    raise bad_data("list", d)


def _dec_any_set(d: dict[str, Any]) -> object:
    items = _dec_any_list(payload(d))
    try:
        return (frozenset if d[RESERVED] == "frozenset" else set)(items)
    except TypeError as e:
        raise bad_data(d[RESERVED], d) from e


_ANY_DECODERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "float": dec_nonfinite,
    "dict": _dec_any_dict,
    "tuple": lambda d: tuple(_dec_any_list(payload(d))),
    "set": _dec_any_set,
    "frozenset": _dec_any_set,
    "bytes": lambda d: unb64(payload(d), "bytes"),
    "bytearray": lambda d: bytearray(unb64(payload(d), "bytearray")),
    "datetime": lambda d: dec_datetime(payload(d)),
    "date": lambda d: dec_date(payload(d)),
    "time": lambda d: dec_time(payload(d)),
    "timedelta": lambda d: dec_timedelta(payload(d)),
    "uuid": lambda d: dec_uuid(payload(d)),
    "decimal": lambda d: dec_decimal(payload(d)),
    "path": _dec_any_path,
    "enum": _dec_any_class,
    "dataclass": _dec_any_class,
    "namedtuple": _dec_any_class,
    "pydantic": _dec_any_class,
}


def dec_any(d: object) -> object:
    """Decode data written by :func:`enc_any`."""
    t = type(d)
    if t is str or t is int or t is bool or t is float or d is None:
        return d
    if t is list:
        return dec_items(d, dec_any)  # type: ignore[arg-type]
    if t is dict:
        if RESERVED not in d:  # type: ignore[operator]
            return dec_object(d, identity, dec_any)  # type: ignore[arg-type]
        decoder = _ANY_DECODERS.get(d[RESERVED])  # type: ignore[index]
        if decoder is None:
            raise PathError(f"unknown tag {show(d[RESERVED])}")  # type: ignore[index]
        return decoder(d)  # type: ignore[arg-type]
    raise bad_data("JSON value", d)


ANY = Codec("Any", enc_any, dec_any, ANY_KIND, (object,))


def kind_of_encoded(value: object) -> int:
    """The JSON kind of ``value`` self-describingly encoded; every kind if it cannot be."""
    try:
        return KIND_OF[type(enc_any(value))]
    except SerializationError:
        return ANY_KIND


def tag_subclass(value: object) -> object:
    """A subclass instance under its base's hint: the base's encoding would lose the subclass
    (and drop its extra fields), so it travels self-describing instead."""
    return enc_any_object(value)


def from_tagged(d: dict[str, Any], cls: type, name: str) -> object:
    """Decode tagged data found under the hint ``cls``: it must be a ``cls`` (a subclass)."""
    value = dec_any(d)
    if isinstance(value, cls):
        return value
    raise bad_data(name, d)
