"""Codecs of classes whose values are records of named fields: dataclasses (generic ones too),
named tuples, ``TypedDict`` and pydantic models.

Each is a JSON object of its fields. Field codecs are built on first use, so fields may name
classes defined later in the module, or the class itself. A subclass instance under its base's
hint travels self-describing, so it comes back as the subclass.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from typing import Any

from perdure.codec.types.base import ANY_KIND, OBJECT, RESERVED, Codec
from perdure.codec.types.cache import LOCK, codec_for
from perdure.codec.types.errors import PathError, bad_data, mismatch, show
from perdure.codec.types.hints import resolve_hints, substitute
from perdure.codec.types.items import key_segment
from perdure.codec.types.pydantic_io import pydantic_dump, pydantic_load
from perdure.codec.types.tagged import from_tagged, tag_subclass

_T = typing.TypeVar("_T")


class _Field:
    __slots__ = ("dec", "enc", "init", "name", "required", "segment")

    def __init__(self, name: str, codec: Codec, init: bool, required: bool) -> None:
        self.name = name
        self.segment = "." + name
        self.enc = codec.enc
        self.dec = codec.dec
        self.init = init
        self.required = required


class _Lazy(typing.Generic[_T]):
    """A class codec's field codecs, built on first use rather than when the codec is compiled.

    A workflow's codec is compiled when it is decorated, and the classes its fields name by
    forward reference may be defined further down the module; by the first call they exist.
    This also lets a class refer to itself (a tree node): its codec is cached before its fields
    are resolved.
    """

    __slots__ = ("_build", "_value")

    def __init__(self, build: Callable[[], _T]) -> None:
        self._build = build
        self._value: _T | None = None

    def get(self) -> _T:
        value = self._value
        if value is None:
            with LOCK:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value


def dataclass_codec(cls: type, mapping: dict[object, object]) -> Codec:
    """A dataclass is an object of all its fields (``init=False`` ones included, restored after
    construction). Missing fields that have defaults take them, so adding a field with a default
    keeps old data readable; unknown keys are ignored for the same reason."""
    name = cls.__qualname__

    def build() -> list[_Field]:
        hints = resolve_hints(cls)
        fields = []
        for f in dataclasses.fields(cls):
            hint = hints.get(f.name, Any if isinstance(f.type, str) else f.type)
            has_default = (f.default is not dataclasses.MISSING
                           or f.default_factory is not dataclasses.MISSING)
            fields.append(_Field(f.name, codec_for(substitute(hint, mapping)), f.init,
                                 f.init and not has_default))
        return fields

    lazy = _Lazy(build)

    def enc(v: object) -> object:
        if type(v) is not cls:
            if isinstance(v, cls):
                return tag_subclass(v)
            raise mismatch(name, v)
        out: dict[str, object] = {}
        for f in lazy.get():
            try:
                out[f.name] = f.enc(getattr(v, f.name))
            except PathError as e:
                e.path.append(f.segment)
                raise
        return out

    def dec(d: object) -> object:
        if type(d) is not dict:
            raise bad_data(name, d)
        if RESERVED in d:  # never a field name (not an identifier): a tagged subclass
            return from_tagged(d, cls, name)
        kwargs: dict[str, object] = {}
        late: list[tuple[str, object]] = []
        for f in lazy.get():
            if f.name in d:
                try:
                    value = f.dec(d[f.name])
                except PathError as e:
                    e.path.append(f.segment)
                    raise
                if f.init:
                    kwargs[f.name] = value
                else:
                    late.append((f.name, value))
            elif f.required:
                raise PathError(f"stored {name} has no field {f.name!r}")
        try:
            obj = cls(**kwargs)
        except Exception as e:  # __post_init__ validation, say
            raise PathError(f"{name}(...) raised {type(e).__name__}: {e}") from e
        for field_name, value in late:
            object.__setattr__(obj, field_name, value)  # frozen dataclasses too
        return obj

    return Codec(name, enc, dec, OBJECT, (cls,))


def namedtuple_codec(cls: type) -> Codec:
    """A named tuple is an object of its fields, like a dataclass."""
    name = cls.__qualname__

    def build() -> list[_Field]:
        hints = resolve_hints(cls)
        defaults = getattr(cls, "_field_defaults", {})
        return [_Field(f, codec_for(hints.get(f, Any)), True, f not in defaults)
                for f in getattr(cls, "_fields", ())]

    lazy = _Lazy(build)

    def enc(v: object) -> object:
        if type(v) is not cls:
            if isinstance(v, cls):
                return tag_subclass(v)
            raise mismatch(name, v)
        out: dict[str, object] = {}
        for f, x in zip(lazy.get(), typing.cast(tuple[Any, ...], v), strict=False):
            try:
                out[f.name] = f.enc(x)
            except PathError as e:
                e.path.append(f.segment)
                raise
        return out

    def dec(d: object) -> object:
        if type(d) is not dict:
            raise bad_data(name, d)
        if RESERVED in d:
            return from_tagged(d, cls, name)
        kwargs: dict[str, object] = {}
        for f in lazy.get():
            if f.name in d:
                try:
                    kwargs[f.name] = f.dec(d[f.name])
                except PathError as e:
                    e.path.append(f.segment)
                    raise
            elif f.required:
                raise PathError(f"stored {name} has no field {f.name!r}")
        try:
            return cls(**kwargs)
        except Exception as e:
            raise PathError(f"{name}(...) raised {type(e).__name__}: {e}") from e

    return Codec(name, enc, dec, OBJECT, (cls,))


def is_typeddict(cls: type) -> bool:
    if typing.is_typeddict(cls):
        return True
    # typing_extensions has its own TypedDict on Python 3.11 (PEP 705 and friends).
    extensions = sys.modules.get("typing_extensions")
    return extensions is not None and bool(extensions.is_typeddict(cls))


def typeddict_codec(cls: type) -> Codec:
    """A TypedDict is a JSON object with each key encoded by its declared type."""
    name = cls.__qualname__
    lazy = _Lazy(lambda: {k: codec_for(h) for k, h in resolve_hints(cls).items()})
    required = frozenset(getattr(cls, "__required_keys__", ()))

    def enc(v: object) -> object:
        if not isinstance(v, dict):
            raise mismatch(name, v)
        codecs = lazy.get()
        out: dict[str, object] = {}
        for k, x in v.items():
            codec = codecs.get(k)
            if codec is None:
                raise PathError(f"key {show(k)} is not declared by {name}")
            try:
                out[k] = codec.enc(x)
            except PathError as e:
                e.path.append(key_segment(k))
                raise
        return out

    def dec(d: object) -> object:
        if type(d) is not dict:
            raise bad_data(name, d)
        codecs = lazy.get()
        out: dict[str, object] = {}
        for k, x in d.items():
            codec = codecs.get(k)
            if codec is None:
                continue  # a key dropped from the declaration since the data was stored
            try:
                out[k] = codec.dec(x)
            except PathError as e:
                e.path.append(key_segment(k))
                raise
        missing = required - out.keys()
        if missing:
            raise PathError(f"stored {name} has no key {sorted(missing)[0]!r}")
        return out

    return Codec(name, enc, dec, OBJECT, (dict,))


def pydantic_codec(cls: type) -> Codec:
    name = cls.__qualname__
    root = bool(getattr(cls, "__pydantic_root_model__", False))

    def enc(v: object) -> object:
        if type(v) is not cls:
            if isinstance(v, cls) and not root:
                return tag_subclass(v)
            if not isinstance(v, cls):
                raise mismatch(name, v)
        return pydantic_dump(v)

    def dec(d: object) -> object:
        if not root and type(d) is dict and RESERVED in d:
            return from_tagged(d, cls, name)
        return pydantic_load(cls, d)

    # A RootModel dumps as its root, which may be any JSON kind.
    return Codec(name, enc, dec, ANY_KIND if root else OBJECT, (cls,))
