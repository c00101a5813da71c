"""The compiler: which codec a type hint gets.

It looks through ``Annotated``, ``NewType``, type variables and the like, and hands each hint to
the module that holds its kind of codec. It registers itself with :mod:`perdure.codec.types.cache`
when the package is imported; :func:`~perdure.codec.types.cache.codec_for` calls it on a cache
miss.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import pathlib
import types
import typing
from collections import abc
from typing import Any

from perdure.codec.types.base import Codec, NoneType
from perdure.codec.types.cache import codec_for, install
from perdure.codec.types.choices import enum_codec, literal_codec
from perdure.codec.types.containers import (
    fixed_tuple_codec,
    mapping_codec,
    sequence_codec,
    set_codec,
    var_tuple_codec,
)
from perdure.codec.types.pydantic_io import is_pydantic_class
from perdure.codec.types.records import (
    dataclass_codec,
    is_typeddict,
    namedtuple_codec,
    pydantic_codec,
    typeddict_codec,
)
from perdure.codec.types.scalars import NONE, SCALARS, path_codec
from perdure.codec.types.tagged import ANY
from perdure.codec.types.unions import union_codec


def _build(hint: object) -> Codec:
    if hint is Any or hint is object or hint is inspect.Parameter.empty:
        return ANY
    if hint is None or hint is NoneType:
        return NONE
    if isinstance(hint, str | typing.ForwardRef):
        return ANY  # a forward reference nobody could resolve: stay self-describing
    if isinstance(hint, typing.TypeVar):
        if hint.__bound__ is not None:
            return codec_for(hint.__bound__)
        if hint.__constraints__:
            return union_codec(hint.__constraints__)
        return ANY
    if isinstance(hint, typing.NewType):
        return codec_for(hint.__supertype__)
    origin = typing.get_origin(hint)
    if origin is not None:
        return _build_generic(hint, origin, typing.get_args(hint))
    if isinstance(hint, type):
        return _build_class(hint)
    return ANY  # a typing construct with no data shape of its own (Callable, Protocol, ...)


_WRAPPERS: tuple[object, ...] = (
    typing.Annotated, typing.ClassVar, typing.Final, typing.Required, typing.NotRequired,
)


def _build_generic(hint: object, origin: object, args: tuple[Any, ...]) -> Codec:
    if origin in _WRAPPERS or getattr(origin, "_name", None) == "ReadOnly":
        return codec_for(args[0])  # metadata only: the data is the inner type's
    if origin is typing.Union or origin is types.UnionType:
        return union_codec(args)
    if origin is typing.Literal:
        return literal_codec(args)
    item = args[0] if args else Any
    if origin is list:
        return sequence_codec(hint, codec_for(item), (list,))
    if origin in (abc.Sequence, abc.MutableSequence):
        return sequence_codec(hint, codec_for(item), (typing.cast(type, origin),))
    if origin is tuple:
        if hint is typing.Tuple:  # noqa: UP006 - bare typing.Tuple means tuple[Any, ...]
            return var_tuple_codec(ANY)
        if len(args) == 2 and args[1] is Ellipsis:
            return var_tuple_codec(codec_for(args[0]))
        return fixed_tuple_codec(hint, [codec_for(a) for a in args])
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        key_hint, value_hint = args if len(args) == 2 else (Any, Any)
        accepts = dict if origin is dict else typing.cast(type, origin)
        return mapping_codec(hint, codec_for(key_hint), codec_for(value_hint), accepts)
    if origin in (set, abc.MutableSet):
        return set_codec(hint, codec_for(item), set, (typing.cast(type, origin),))
    if origin is frozenset:
        return set_codec(hint, codec_for(item), frozenset, (frozenset,))
    if origin is abc.Set:
        return set_codec(hint, codec_for(item), set, (abc.Set,))
    if isinstance(origin, type):
        if dataclasses.is_dataclass(origin):  # a generic dataclass such as Box[int]
            mapping = dict(zip(getattr(origin, "__parameters__", ()), args, strict=False))
            return dataclass_codec(origin, mapping)
        return _build_class(origin)
    return ANY


def _build_class(cls: type) -> Codec:
    scalar = SCALARS.get(cls)
    if scalar is not None:
        return scalar
    if cls is list:
        return sequence_codec(list, ANY, (list,))
    if cls is tuple:
        return var_tuple_codec(ANY)
    if cls is dict:
        return mapping_codec(dict, ANY, ANY, dict)
    if cls is set or cls is frozenset:
        return set_codec(cls, ANY, cls, (cls,))
    if cls in (abc.Sequence, abc.MutableSequence):
        return sequence_codec(cls, ANY, (cls,))
    if cls in (abc.Mapping, abc.MutableMapping):
        return mapping_codec(cls, ANY, ANY, cls)
    if issubclass(cls, enum.Enum):
        # An Enum base without members (a common parent) cannot decode by value: let the
        # self-describing encoding name each member's real class instead.
        return enum_codec(cls) if len(cls.__members__) else ANY
    if issubclass(cls, pathlib.PurePath):
        return path_codec(cls)
    if dataclasses.is_dataclass(cls):
        return dataclass_codec(cls, {})
    if is_typeddict(cls):
        return typeddict_codec(cls)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return namedtuple_codec(cls)
    if is_pydantic_class(cls):
        return pydantic_codec(cls)
    # Abstract bases, protocols and other classes: the values themselves say what they are.
    return ANY


install(_build)
