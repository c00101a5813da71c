"""The compiler behind :mod:`perdure.codec`: a type hint becomes an (encoder, decoder) pair.

Internal module; the public surface is :mod:`perdure.codec`.

An encoder turns a value into *JSON data* (``dict``/``list``/``str``/``int``/``float``/``bool``/
``None``) and a decoder turns that data back into a value of the hinted type. Each hint is compiled
once into a :class:`Codec` and cached, so the per-value work is a few closure calls.

Two encodings coexist:

* **Typed** (the hint says what the value is): the JSON holds no type information beyond what
  the hint cannot tell, e.g. ``datetime`` is an ISO string, a dataclass is an object of fields.
* **Self-describing** (hint ``Any``, ``object`` or none): plain JSON scalars, lists and
  str-keyed dicts stay as they are; everything else becomes a tagged object
  ``{"$perdure": "<tag>", "v": ...}`` (classes add ``"t": "module:qualname"``). A user dict that
  holds the reserved key itself is escaped as a ``"dict"`` tag of key/value pairs, so decoding is
  never ambiguous.

Errors are :class:`PathError`, a :class:`~perdure.errors.SerializationError` that records the
path into the value on its way up, so the public entry points can say where the problem is.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import inspect
import json
import math
import pathlib
import reprlib
import sys
import threading
import types
import typing
import uuid
import zoneinfo
from collections import abc
from collections.abc import Callable, Iterable
from typing import Any

from perdure.errors import SerializationError

__all__ = [
    "RESERVED", "Codec", "PathError", "codec_for", "dec_any", "enc_any", "resolve_hints",
    "resolve_hints_status",
]

#: The one key reserved for tags in the self-describing encoding.
RESERVED = "$perdure"

# JSON kinds a codec can produce, as bit flags. A union whose members produce disjoint kinds is
# decoded by looking at the data alone; otherwise its encoding names the member (see _union).
NULL, BOOL, NUMBER, STRING, ARRAY, OBJECT = 1, 2, 4, 8, 16, 32
ANY_KIND = NULL | BOOL | NUMBER | STRING | ARRAY | OBJECT
_KIND_OF: dict[type, int] = {
    type(None): NULL, bool: BOOL, int: NUMBER, float: NUMBER, str: STRING, list: ARRAY,
    dict: OBJECT,
}

Encoder = Callable[[Any], object]
Decoder = Callable[[Any], object]
_NoneType = type(None)
_T = typing.TypeVar("_T")


class PathError(SerializationError):
    """A codec failure, with the path from the top-level value down to the failing part."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Segments such as ``.items`` or ``[2]``, innermost first (appended while unwinding).
        self.path: list[str] = []

    def where(self) -> str:
        """The path as text, e.g. ``field 'items'[2].sku``; empty for the top-level value."""
        if not self.path:
            return ""
        segments = self.path[::-1]
        if segments[0].startswith("."):
            segments[0] = f"field {segments[0][1:]!r}"
        return "".join(segments)


def _show(value: object) -> str:
    return reprlib.repr(value)


def _mismatch(expected: str, value: object) -> PathError:
    return PathError(f"expected {expected}, got {type(value).__qualname__} {_show(value)}")


def _bad_data(expected: str, data: object) -> PathError:
    return PathError(f"stored data {_show(data)} is not a valid {expected}")


def _payload(data: dict[str, Any], key: str = "v") -> Any:
    try:
        return data[key]
    except KeyError:
        raise PathError(f"malformed {data.get(RESERVED)!r} value: no {key!r} key") from None


class Codec:
    """One compiled hint: ``enc`` turns a value into JSON data, ``dec`` turns it back.

    ``kinds`` are the JSON kinds ``enc`` can produce (bit flags) and ``accepts`` the runtime
    classes it takes; unions use both to choose a member.
    """

    __slots__ = ("accepts", "dec", "enc", "kinds", "name")

    def __init__(self, name: str, enc: Encoder, dec: Decoder, kinds: int,
                 accepts: tuple[type, ...]) -> None:
        self.name = name
        self.enc = enc
        self.dec = dec
        self.kinds = kinds
        self.accepts = accepts


# --- the cache ---------------------------------------------------------------------------------

_CACHE: dict[object, Codec] = {}
_LOCK = threading.RLock()
_CACHE_LIMIT = 4096


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
        with _LOCK:
            return _build(hint)
    if codec is not None:
        return codec
    with _LOCK:
        codec = _CACHE.get(key)
        if codec is None:
            codec = _build(hint)
            if len(_CACHE) >= _CACHE_LIMIT:  # runaway dynamic hints: start over, never grow
                _CACHE.clear()
            _CACHE[key] = codec
        return codec


def _hint_name(hint: object) -> str:
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


def _build(hint: object) -> Codec:
    if hint is Any or hint is object or hint is inspect.Parameter.empty:
        return ANY
    if hint is None or hint is _NoneType:
        return _NONE
    if isinstance(hint, str | typing.ForwardRef):
        return ANY  # a forward reference nobody could resolve: stay self-describing
    if isinstance(hint, typing.TypeVar):
        if hint.__bound__ is not None:
            return codec_for(hint.__bound__)
        if hint.__constraints__:
            return _union(hint.__constraints__)
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
        return _union(args)
    if origin is typing.Literal:
        return _literal(args)
    item = args[0] if args else Any
    if origin is list:
        return _sequence(hint, codec_for(item), (list,))
    if origin in (abc.Sequence, abc.MutableSequence):
        return _sequence(hint, codec_for(item), (typing.cast(type, origin),))
    if origin is tuple:
        if hint is typing.Tuple:  # noqa: UP006 - bare typing.Tuple means tuple[Any, ...]
            return _var_tuple(ANY)
        if len(args) == 2 and args[1] is Ellipsis:
            return _var_tuple(codec_for(args[0]))
        return _fixed_tuple(hint, [codec_for(a) for a in args])
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        key_hint, value_hint = args if len(args) == 2 else (Any, Any)
        accepts = dict if origin is dict else typing.cast(type, origin)
        return _mapping(hint, codec_for(key_hint), codec_for(value_hint), accepts)
    if origin in (set, abc.MutableSet):
        return _set(hint, codec_for(item), set, (typing.cast(type, origin),))
    if origin is frozenset:
        return _set(hint, codec_for(item), frozenset, (frozenset,))
    if origin is abc.Set:
        return _set(hint, codec_for(item), set, (abc.Set,))
    if isinstance(origin, type):
        if dataclasses.is_dataclass(origin):  # a generic dataclass such as Box[int]
            mapping = dict(zip(getattr(origin, "__parameters__", ()), args, strict=False))
            return _dataclass(origin, mapping)
        return _build_class(origin)
    return ANY


def _build_class(cls: type) -> Codec:
    scalar = _SCALARS.get(cls)
    if scalar is not None:
        return scalar
    if cls is list:
        return _sequence(list, ANY, (list,))
    if cls is tuple:
        return _var_tuple(ANY)
    if cls is dict:
        return _mapping(dict, ANY, ANY, dict)
    if cls is set or cls is frozenset:
        return _set(cls, ANY, cls, (cls,))
    if cls in (abc.Sequence, abc.MutableSequence):
        return _sequence(cls, ANY, (cls,))
    if cls in (abc.Mapping, abc.MutableMapping):
        return _mapping(cls, ANY, ANY, cls)
    if issubclass(cls, enum.Enum):
        # An Enum base without members (a common parent) cannot decode by value: let the
        # self-describing encoding name each member's real class instead.
        return _enum(cls) if len(cls.__members__) else ANY
    if issubclass(cls, pathlib.PurePath):
        return _path(cls)
    if dataclasses.is_dataclass(cls):
        return _dataclass(cls, {})
    if _is_typeddict(cls):
        return _typeddict(cls)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _namedtuple(cls)
    if _is_pydantic_class(cls):
        return _pydantic(cls)
    # Abstract bases, protocols and other classes: the values themselves say what they are.
    return ANY


# --- scalars -----------------------------------------------------------------------------------

def _enc_none(v: object) -> object:
    if v is None:
        return None
    raise _mismatch("None", v)


def _dec_none(d: object) -> object:
    if d is None:
        return None
    raise _bad_data("None", d)


def _enc_bool(v: object) -> object:
    if type(v) is bool:
        return v
    raise _mismatch("bool", v)


def _dec_bool(d: object) -> object:
    if type(d) is bool:
        return d
    raise _bad_data("bool", d)


def _enc_int(v: object) -> object:
    # bool is an int to Python and to type checkers; keep it a JSON bool so it comes back a bool.
    if type(v) is int or type(v) is bool:
        return v
    if isinstance(v, int):
        return int(v)  # an IntEnum or other subclass, as the plain int the hint promises
    raise _mismatch("int", v)


def _dec_int(d: object) -> object:
    if type(d) is int or type(d) is bool:
        return d
    raise _bad_data("int", d)


def _nonfinite(v: float) -> dict[str, object]:
    return {RESERVED: "float", "v": "nan" if v != v else ("inf" if v > 0 else "-inf")}


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _dec_nonfinite(d: dict[str, Any]) -> float:
    try:
        return _NONFINITE[_payload(d)]
    except (KeyError, TypeError):
        raise _bad_data("float", d) from None


def _enc_float(v: object) -> object:
    t = type(v)
    if t is float:
        f = typing.cast(float, v)
        # NaN and infinities are not JSON; tag them so the text stays strict JSON.
        return f if f - f == 0.0 else _nonfinite(f)
    if t is int or t is bool:
        return v  # int is acceptable where float is hinted; keep it an int, exactly
    if isinstance(v, float):
        return _enc_float(float(v))
    if isinstance(v, int):
        return int(v)
    raise _mismatch("float", v)


def _dec_float(d: object) -> object:
    t = type(d)
    if t is float or t is int or t is bool:
        return d
    if t is dict and d.get(RESERVED) == "float":  # type: ignore[attr-defined]
        return _dec_nonfinite(d)  # type: ignore[arg-type]
    raise _bad_data("float", d)


def _enc_str(v: object) -> object:
    if type(v) is str:
        return v
    if isinstance(v, str):
        return str.__str__(v)  # the plain str value of a subclass (a StrEnum member, say)
    raise _mismatch("str", v)


def _dec_str(d: object) -> object:
    if type(d) is str:
        return d
    raise _bad_data("str", d)


def _b64(v: bytes | bytearray) -> str:
    return base64.b64encode(v).decode("ascii")


def _unb64(d: object, what: str) -> bytes:
    if type(d) is str:
        try:
            return base64.b64decode(d, validate=True)
        except ValueError:
            pass
    raise _bad_data(what, d)


def _enc_bytes(v: object) -> object:
    if type(v) is bytes:
        return _b64(v)
    raise _mismatch("bytes", v)


def _enc_bytearray(v: object) -> object:
    if type(v) is bytearray:
        return _b64(v)
    raise _mismatch("bytearray", v)


def _temporal(v: dt.datetime | dt.time) -> object:
    """A datetime or time as its ISO text, plus whatever ISO text cannot hold.

    Plain ``timezone`` offsets survive in the ISO text itself; a named ``timezone``, a
    sub-second offset, a ``ZoneInfo`` zone and ``fold=1`` need an object
    ``{"iso": ..., "tzname"/"offset"/"zone"/"fold": ...}``.
    """
    text = v.isoformat()
    tz = v.tzinfo
    extra: dict[str, object] = {}
    if tz is not None and tz is not dt.UTC:
        if type(tz) is dt.timezone:
            offset = tz.utcoffset(None)
            if offset.microseconds:  # fromisoformat (3.11) drops sub-second offsets
                extra["offset"] = offset // dt.timedelta(microseconds=1)
            name = tz.tzname(None)
            if name != dt.timezone(offset).tzname(None):
                extra["tzname"] = name
        elif isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None:
            extra["zone"] = tz.key
        else:
            raise PathError(
                f"tzinfo of type {type(tz).__qualname__} cannot be encoded; use "
                "datetime.timezone or zoneinfo.ZoneInfo")
    if v.fold:
        extra["fold"] = 1
    if not extra:
        return text
    return {"iso": text, **extra}


def _untemporal(d: object, parse: Callable[[str], Any], what: str) -> Any:
    try:
        if type(d) is str:
            return parse(d)
        if type(d) is dict and type(d.get("iso")) is str:
            value = parse(d["iso"])
            zone, tzname, offset = d.get("zone"), d.get("tzname"), d.get("offset")
            if zone is not None:
                # The wall time is what was stored; the zone's rules supply the offset.
                value = value.replace(tzinfo=zoneinfo.ZoneInfo(zone))
            elif tzname is not None or offset is not None:
                delta = value.utcoffset() if offset is None else dt.timedelta(microseconds=offset)
                tz = dt.timezone(delta) if tzname is None else dt.timezone(delta, tzname)
                value = value.replace(tzinfo=tz)
            if d.get("fold"):
                value = value.replace(fold=1)
            return value
    except (ValueError, TypeError, KeyError) as e:  # ZoneInfoNotFoundError is a KeyError
        raise _bad_data(what, d) from e
    raise _bad_data(what, d)


def _enc_datetime(v: object) -> object:
    if isinstance(v, dt.datetime):
        return _temporal(v)
    raise _mismatch("datetime", v)


def _dec_datetime(d: object) -> object:
    return _untemporal(d, dt.datetime.fromisoformat, "datetime")


def _enc_date(v: object) -> object:
    if type(v) is dt.date:
        return v.isoformat()
    if isinstance(v, dt.datetime):
        return _temporal(v)  # a datetime is a date too; it keeps its time (the data says which)
    if isinstance(v, dt.date):
        return dt.date(v.year, v.month, v.day).isoformat()
    raise _mismatch("date", v)


def _dec_date(d: object) -> object:
    if type(d) is str and len(d) == 10:
        try:
            return dt.date.fromisoformat(d)
        except ValueError as e:
            raise _bad_data("date", d) from e
    return _untemporal(d, dt.datetime.fromisoformat, "date")


def _enc_time(v: object) -> object:
    if isinstance(v, dt.time):
        return _temporal(v)
    raise _mismatch("time", v)


def _dec_time(d: object) -> object:
    return _untemporal(d, dt.time.fromisoformat, "time")


def _enc_timedelta(v: object) -> object:
    if isinstance(v, dt.timedelta):
        # Whole microseconds: exact over timedelta's entire range (a float of seconds is not).
        return (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
    raise _mismatch("timedelta", v)


def _dec_timedelta(d: object) -> object:
    if type(d) is int:
        try:
            return dt.timedelta(microseconds=d)
        except OverflowError as e:
            raise _bad_data("timedelta", d) from e
    raise _bad_data("timedelta", d)


def _enc_uuid(v: object) -> object:
    if isinstance(v, uuid.UUID):
        return str(v)
    raise _mismatch("UUID", v)


def _dec_uuid(d: object) -> object:
    if type(d) is str:
        try:
            return uuid.UUID(d)
        except ValueError as e:
            raise _bad_data("UUID", d) from e
    raise _bad_data("UUID", d)


def _enc_decimal(v: object) -> object:
    if isinstance(v, decimal.Decimal):
        return str(v)  # exact, including NaN, infinities and -0
    raise _mismatch("Decimal", v)


def _dec_decimal(d: object) -> object:
    if type(d) is str:
        try:
            value = decimal.Decimal(d)
        except (decimal.InvalidOperation, ValueError) as e:
            raise _bad_data("Decimal", d) from e
        # Under a context that does not trap InvalidOperation, junk parses as NaN.
        if not value.is_nan() or "nan" in d.lower():
            return value
    raise _bad_data("Decimal", d)


def _scalar(name: str, enc: Encoder, dec: Decoder, kinds: int, *accepts: type) -> Codec:
    return Codec(name, enc, dec, kinds, accepts)


_NONE = _scalar("None", _enc_none, _dec_none, NULL, _NoneType)
_SCALARS: dict[type, Codec] = {
    _NoneType: _NONE,
    bool: _scalar("bool", _enc_bool, _dec_bool, BOOL, bool),
    int: _scalar("int", _enc_int, _dec_int, NUMBER | BOOL, int),
    float: _scalar("float", _enc_float, _dec_float, NUMBER | BOOL | OBJECT, int, float),
    str: _scalar("str", _enc_str, _dec_str, STRING, str),
    bytes: _scalar("bytes", _enc_bytes, lambda d: _unb64(d, "bytes"), STRING, bytes),
    bytearray: _scalar("bytearray", _enc_bytearray, lambda d: bytearray(_unb64(d, "bytearray")),
                       STRING, bytearray),
    dt.datetime: _scalar("datetime", _enc_datetime, _dec_datetime, STRING | OBJECT, dt.datetime),
    dt.date: _scalar("date", _enc_date, _dec_date, STRING | OBJECT, dt.date),
    dt.time: _scalar("time", _enc_time, _dec_time, STRING | OBJECT, dt.time),
    dt.timedelta: _scalar("timedelta", _enc_timedelta, _dec_timedelta, NUMBER, dt.timedelta),
    uuid.UUID: _scalar("UUID", _enc_uuid, _dec_uuid, STRING, uuid.UUID),
    decimal.Decimal: _scalar("Decimal", _enc_decimal, _dec_decimal, STRING, decimal.Decimal),
}


def _path(cls: type[pathlib.PurePath]) -> Codec:
    name = cls.__qualname__

    def enc(v: object) -> object:
        if isinstance(v, cls):
            return str(v)
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is str:
            try:
                return cls(d)
            except Exception as e:  # e.g. a WindowsPath on a POSIX system
                raise _bad_data(name, d) from e
        raise _bad_data(name, d)

    return Codec(name, enc, dec, STRING, (cls,))


# --- containers --------------------------------------------------------------------------------
# Loops rather than comprehensions: on failure the index must go into the error's path.

def _enc_items(v: Iterable[Any], enc: Encoder) -> list[object]:
    out: list[object] = []
    for i, x in enumerate(v):
        try:
            out.append(enc(x))
        except PathError as e:
            e.path.append(f"[{i}]")
            raise
    return out


def _dec_items(d: list[Any], dec: Decoder) -> list[object]:
    out: list[object] = []
    for i, x in enumerate(d):
        try:
            out.append(dec(x))
        except PathError as e:
            e.path.append(f"[{i}]")
            raise
    return out


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _enc_set_items(v: Iterable[Any], enc: Encoder) -> list[object]:
    """A set's elements in a deterministic order: set iteration order differs between processes
    (str hashes are salted), and the same value must always give the same text."""
    out: list[object] = []
    for x in v:
        try:
            out.append(enc(x))
        except PathError as e:
            e.path.append(f"{{element {_show(x)}}}")
            raise
    types_seen = {type(e) for e in out}
    if types_seen <= {str} or types_seen <= {int, float}:
        out.sort(key=typing.cast(Callable[[object], Any], _identity))
    else:
        out.sort(key=_canonical)
    return out


def _identity(x: object) -> object:
    return x


def _sequence(hint: object, item: Codec, accepts: tuple[type, ...]) -> Codec:
    name = _hint_name(hint)
    ienc, idec = item.enc, item.dec
    exact = accepts == (list,)

    def enc(v: object) -> object:
        if exact:
            if not isinstance(v, list):
                raise _mismatch(name, v)
        elif isinstance(v, str | bytes | bytearray) or not isinstance(v, accepts):
            # str is a Sequence[str], but turning it into a list of characters is never meant.
            raise _mismatch(name, v)
        return _enc_items(v, ienc)  # type: ignore[arg-type]

    def dec(d: object) -> object:
        if type(d) is list:
            return _dec_items(d, idec)
        raise _bad_data(name, d)

    return Codec(name, enc, dec, ARRAY, accepts)


def _var_tuple(item: Codec) -> Codec:
    name = f"tuple[{item.name}, ...]"
    ienc, idec = item.enc, item.dec

    def enc(v: object) -> object:
        if isinstance(v, tuple):
            return _enc_items(v, ienc)
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is list:
            return tuple(_dec_items(d, idec))
        raise _bad_data(name, d)

    return Codec(name, enc, dec, ARRAY, (tuple,))


def _fixed_tuple(hint: object, items: list[Codec]) -> Codec:
    name = _hint_name(hint)
    encs = [c.enc for c in items]
    decs = [c.dec for c in items]
    size = len(items)

    def enc(v: object) -> object:
        if not isinstance(v, tuple) or len(v) != size:
            raise _mismatch(name, v)
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
            raise _bad_data(name, d)
        out: list[object] = []
        for i, (f, x) in enumerate(zip(decs, d, strict=True)):
            try:
                out.append(f(x))
            except PathError as err:
                err.path.append(f"[{i}]")
                raise
        return tuple(out)

    return Codec(name, enc, dec, ARRAY, (tuple,))


def _key_segment(k: object) -> str:
    return f"[{_show(k)}]"


def _enc_pairs(v: abc.Mapping[Any, Any], kenc: Encoder, venc: Encoder) -> list[object]:
    out: list[object] = []
    for k, x in v.items():
        try:
            ek = kenc(k)
        except PathError as e:
            e.path.append(f"<key {_show(k)}>")
            raise
        try:
            out.append([ek, venc(x)])
        except PathError as e:
            e.path.append(_key_segment(k))
            raise
    return out


def _dec_pairs(d: object, kdec: Decoder, vdec: Decoder, what: str) -> dict[Any, Any]:
    if type(d) is not list:
        raise _bad_data(what, d)
    out: dict[Any, Any] = {}
    for i, pair in enumerate(d):
        if type(pair) is not list or len(pair) != 2:
            raise _bad_data(f"key/value pair of {what}", pair)
        try:
            k = kdec(pair[0])
            out[k] = vdec(pair[1])
        except PathError as e:
            e.path.append(f"[{i}]")
            raise
        except TypeError as e:  # the decoded key is unhashable
            raise _bad_data(f"key of {what}", pair[0]) from e
    return out


def _enc_object(v: abc.Mapping[str, Any], kenc: Encoder, venc: Encoder) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, x in v.items():
        try:
            ek = kenc(k)
        except PathError as e:
            e.path.append(f"<key {_show(k)}>")
            raise
        try:
            out[typing.cast(str, ek)] = venc(x)
        except PathError as e:
            e.path.append(_key_segment(k))
            raise
    return out


def _dec_object(d: dict[str, Any], kdec: Decoder, vdec: Decoder) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, x in d.items():
        try:
            out[kdec(k)] = vdec(x)
        except PathError as e:
            e.path.append(_key_segment(k))
            raise
    return out


def _mapping(hint: object, key: Codec, value: Codec, accepts: type) -> Codec:
    """A dict codec. Keys that always encode to JSON strings give a JSON object; keys of any
    type give an object when they happen to be plain strings and tagged pairs otherwise; other
    keys (int, tuple, datetime...) give a list of ``[key, value]`` pairs."""
    name = _hint_name(hint)
    if key.kinds == STRING:
        return _object_mapping(name, key, value, accepts)
    if key is ANY:
        return _any_key_mapping(name, value, accepts)
    kenc, kdec, venc, vdec = key.enc, key.dec, value.enc, value.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return _enc_pairs(v, kenc, venc)  # type: ignore[arg-type]
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        return _dec_pairs(d, kdec, vdec, name)

    return Codec(name, enc, dec, ARRAY, (accepts,))


def _object_mapping(name: str, key: Codec, value: Codec, accepts: type) -> Codec:
    kenc, kdec, venc, vdec = key.enc, key.dec, value.enc, value.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return _enc_object(v, kenc, venc)  # type: ignore[arg-type]
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is dict:
            return _dec_object(d, kdec, vdec)
        raise _bad_data(name, d)

    return Codec(name, enc, dec, OBJECT, (accepts,))


def _any_key_mapping(name: str, value: Codec, accepts: type) -> Codec:
    venc, vdec = value.enc, value.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return _enc_any_mapping(v, venc)  # type: ignore[arg-type]
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is dict:
            if RESERVED not in d:
                return _dec_object(d, _identity, vdec)
            if d[RESERVED] == "dict":
                return _dec_pairs(_payload(d), dec_any, vdec, name)
        raise _bad_data(name, d)

    return Codec(name, enc, dec, OBJECT, (accepts,))


def _set(hint: object, item: Codec, result: type[set[Any]] | type[frozenset[Any]],
         accepts: tuple[type, ...]) -> Codec:
    name = _hint_name(hint)
    ienc, idec = item.enc, item.dec

    def enc(v: object) -> object:
        if isinstance(v, accepts):
            return _enc_set_items(v, ienc)  # type: ignore[arg-type]
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is list:
            try:
                return result(_dec_items(d, idec))
            except TypeError as e:  # an unhashable element
                raise _bad_data(name, d) from e
        raise _bad_data(name, d)

    return Codec(name, enc, dec, ARRAY, accepts)


# --- unions and literals -----------------------------------------------------------------------

def _member_key(hint: object) -> str:
    """A member's name in a tagged union: stable across processes and independent of order."""
    if isinstance(hint, type):
        module = hint.__module__
        return hint.__qualname__ if module == "builtins" else f"{module}.{hint.__qualname__}"
    return repr(hint)


def _strip_annotated(hint: object) -> object:
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _union(args: tuple[Any, ...]) -> Codec:
    """A union codec.

    ``None`` is JSON null. When the other members produce disjoint JSON kinds (``int | str``,
    ``Foo | None``) the data is the member's own encoding and decoding looks at its kind.
    Otherwise (``Foo | Bar``, ``date | str``) the encoding names the member:
    ``{"$perdure": "union", "m": "<member>", "v": ...}``; the name is the member's qualified
    name, not its position, so reordering the union keeps old data readable.
    Encoding picks the first member whose runtime class matches the value and that encodes it.
    """
    has_none = False
    hints: list[object] = []
    literal_values: list[object] = []
    for arg in args:
        hint = _strip_annotated(arg)
        if hint is None or hint is _NoneType:
            has_none = True
        elif hint is Any or hint is object:
            return ANY  # every value matches Any; the self-describing encoding covers all
        elif typing.get_origin(hint) is typing.Literal:
            if not literal_values:
                hints.append(typing.Literal)  # placeholder: all literals merge into one member
            literal_values.extend(typing.get_args(hint))
        else:
            hints.append(hint)
    # float's codec keeps ints exact and int's keeps bools, so those members add nothing.
    if float in hints:
        hints = [h for h in hints if h is not int and h is not bool]
    elif int in hints:
        hints = [h for h in hints if h is not bool]

    members: list[tuple[str, Codec]] = []
    for hint in hints:
        if hint is typing.Literal:
            codec = _literal(tuple(literal_values))
            members.append((codec.name, codec))
        else:
            members.append((_member_key(hint), codec_for(hint)))
    if not members:
        return _NONE
    if len(members) == 1:
        only = members[0][1]
        # A member that already takes None (a Literal holding None) needs no wrapper.
        return _optional(only) if has_none and not only.kinds & NULL else only

    seen = NULL if has_none else 0
    disjoint = True
    for _, codec in members:
        disjoint = disjoint and not (codec.kinds & seen)
        seen |= codec.kinds
    name = " | ".join([k for k, _ in members] + (["None"] if has_none else []))
    accepts = tuple({cls for _, c in members for cls in c.accepts})
    if has_none:
        accepts += (_NoneType,)
    if disjoint:
        return _untagged_union(name, members, has_none, seen, accepts)
    return _tagged_union(name, members, has_none, accepts)


def _optional(inner: Codec) -> Codec:
    ienc, idec = inner.enc, inner.dec

    def enc(v: object) -> object:
        return None if v is None else ienc(v)

    def dec(d: object) -> object:
        return None if d is None else idec(d)

    return Codec(f"{inner.name} | None", enc, dec, inner.kinds | NULL,
                 (*inner.accepts, _NoneType))


def _pick(members: list[tuple[str, tuple[type, ...], Encoder]], v: object, name: str
          ) -> tuple[str, object]:
    first_error: PathError | None = None
    for key, accepts, enc in members:
        if isinstance(v, accepts):
            try:
                return key, enc(v)
            except PathError as e:
                first_error = first_error or e
    if first_error is not None:
        raise first_error
    raise _mismatch(name, v)


def _untagged_union(name: str, members: list[tuple[str, Codec]], has_none: bool, kinds: int,
                    accepts: tuple[type, ...]) -> Codec:
    encoders = [(k, c.accepts, c.enc) for k, c in members]
    by_kind: dict[int, Decoder] = {}
    for _, codec in members:
        for flag in (NULL, BOOL, NUMBER, STRING, ARRAY, OBJECT):
            if codec.kinds & flag:
                by_kind[flag] = codec.dec

    def enc(v: object) -> object:
        if v is None and has_none:
            return None
        return _pick(encoders, v, name)[1]

    def dec(d: object) -> object:
        if d is None and has_none:
            return None
        decoder = by_kind.get(_KIND_OF.get(type(d), 0))
        if decoder is None:
            raise _bad_data(name, d)
        return decoder(d)

    return Codec(name, enc, dec, kinds, accepts)


def _tagged_union(name: str, members: list[tuple[str, Codec]], has_none: bool,
                  accepts: tuple[type, ...]) -> Codec:
    keys: dict[str, int] = {}
    encoders: list[tuple[str, tuple[type, ...], Encoder]] = []
    decoders: dict[str, Decoder] = {}
    for key, codec in members:
        if key in keys:  # two members print the same (same-named classes): disambiguate
            keys[key] += 1
            key = f"{key}#{keys[key]}"
        else:
            keys[key] = 0
        encoders.append((key, codec.accepts, codec.enc))
        decoders[key] = codec.dec

    def enc(v: object) -> object:
        if v is None and has_none:
            return None
        key, data = _pick(encoders, v, name)
        return {RESERVED: "union", "m": key, "v": data}

    def dec(d: object) -> object:
        if d is None and has_none:
            return None
        if type(d) is dict and d.get(RESERVED) == "union":
            decoder = decoders.get(d.get("m"))  # type: ignore[arg-type]
            if decoder is not None:
                return decoder(_payload(d))
            raise PathError(f"stored union member {d.get('m')!r} is not a member of {name}")
        raise _bad_data(name, d)

    return Codec(name, enc, dec, OBJECT | (NULL if has_none else 0), accepts)


def _kind_of_encoded(value: object) -> int:
    try:
        return _KIND_OF[type(enc_any(value))]
    except SerializationError:
        return ANY_KIND


def _literal(values: tuple[Any, ...]) -> Codec:
    name = "Literal[" + ", ".join(repr(v) for v in values) + "]"
    # (type, value) pairs: Literal[1] must not accept True, though 1 == True.
    allowed = {(type(v), v) for v in values}
    kinds = 0
    for v in values:
        kinds |= _kind_of_encoded(v)

    def check(value: object) -> bool:
        try:
            return (type(value), value) in allowed
        except TypeError:  # unhashable
            return False

    def enc(v: object) -> object:
        if check(v):
            return enc_any(v)
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        value = dec_any(d)
        if check(value):
            return value
        raise _bad_data(name, d)

    return Codec(name, enc, dec, kinds, tuple({type(v) for v in values}))


# --- enums and classes -------------------------------------------------------------------------

def _enum(cls: type[enum.Enum]) -> Codec:
    """An enum member is stored as its value (encoded self-describingly, so any value type
    works) and looked up by value on decode."""
    name = cls.__qualname__
    kinds = 0
    for member in cls:
        kinds |= _kind_of_encoded(member.value)

    def enc(v: object) -> object:
        if isinstance(v, cls):
            return enc_any(v.value)
        raise _mismatch(name, v)

    def dec(d: object) -> object:
        try:
            return cls(dec_any(d))
        except ValueError as e:
            raise _bad_data(name, d) from e

    return Codec(name, enc, dec, kinds or ANY_KIND, (cls,))


def _substitute(hint: object, mapping: dict[object, object]) -> object:
    """``hint`` with a generic class's type parameters replaced by its arguments."""
    if not mapping:
        return hint
    if isinstance(hint, typing.TypeVar):
        return mapping.get(hint, hint)
    params = getattr(hint, "__parameters__", ())
    if params and typing.get_origin(hint) is not None:
        try:
            return typing.cast(Any, hint)[tuple(mapping.get(p, p) for p in params)]
        except TypeError:
            return hint
    return hint


def _tag_subclass(value: object) -> object:
    """A subclass instance under its base's hint: the base's encoding would lose the subclass
    (and drop its extra fields), so it travels self-describing instead."""
    return _enc_any_object(value)


def _from_tagged(d: dict[str, Any], cls: type, name: str) -> object:
    value = dec_any(d)
    if isinstance(value, cls):
        return value
    raise _bad_data(name, d)


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
            with _LOCK:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value


def _dataclass(cls: type, mapping: dict[object, object]) -> Codec:
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
            fields.append(_Field(f.name, codec_for(_substitute(hint, mapping)), f.init,
                                 f.init and not has_default))
        return fields

    lazy = _Lazy(build)

    def enc(v: object) -> object:
        if type(v) is not cls:
            if isinstance(v, cls):
                return _tag_subclass(v)
            raise _mismatch(name, v)
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
            raise _bad_data(name, d)
        if RESERVED in d:  # never a field name (not an identifier): a tagged subclass
            return _from_tagged(d, cls, name)
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


def _namedtuple(cls: type) -> Codec:
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
                return _tag_subclass(v)
            raise _mismatch(name, v)
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
            raise _bad_data(name, d)
        if RESERVED in d:
            return _from_tagged(d, cls, name)
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


def _is_typeddict(cls: type) -> bool:
    if typing.is_typeddict(cls):
        return True
    # typing_extensions has its own TypedDict on Python 3.11 (PEP 705 and friends).
    extensions = sys.modules.get("typing_extensions")
    return extensions is not None and bool(extensions.is_typeddict(cls))


def _typeddict(cls: type) -> Codec:
    """A TypedDict is a JSON object with each key encoded by its declared type."""
    name = cls.__qualname__
    lazy = _Lazy(lambda: {k: codec_for(h) for k, h in resolve_hints(cls).items()})
    required = frozenset(getattr(cls, "__required_keys__", ()))

    def enc(v: object) -> object:
        if not isinstance(v, dict):
            raise _mismatch(name, v)
        codecs = lazy.get()
        out: dict[str, object] = {}
        for k, x in v.items():
            codec = codecs.get(k)
            if codec is None:
                raise PathError(f"key {_show(k)} is not declared by {name}")
            try:
                out[k] = codec.enc(x)
            except PathError as e:
                e.path.append(_key_segment(k))
                raise
        return out

    def dec(d: object) -> object:
        if type(d) is not dict:
            raise _bad_data(name, d)
        codecs = lazy.get()
        out: dict[str, object] = {}
        for k, x in d.items():
            codec = codecs.get(k)
            if codec is None:
                continue  # a key dropped from the declaration since the data was stored
            try:
                out[k] = codec.dec(x)
            except PathError as e:
                e.path.append(_key_segment(k))
                raise
        missing = required - out.keys()
        if missing:
            raise PathError(f"stored {name} has no key {sorted(missing)[0]!r}")
        return out

    return Codec(name, enc, dec, OBJECT, (dict,))


def _pydantic_base() -> type | None:
    # No import: if pydantic was never imported, no value can be one of its models.
    module = sys.modules.get("pydantic")
    base = getattr(module, "BaseModel", None) if module is not None else None
    return base if isinstance(base, type) else None


def _is_pydantic_class(cls: type) -> bool:
    base = _pydantic_base()
    return base is not None and issubclass(cls, base)


def _pydantic_dump(v: Any) -> object:
    try:
        return v.model_dump(mode="json", by_alias=True)
    except Exception as e:
        raise PathError(f"pydantic could not dump {type(v).__qualname__}: {e}") from e


def _pydantic_load(cls: Any, d: object) -> object:
    try:
        if cls.model_config.get("strict"):
            # Strict models refuse a datetime given as a string in Python mode; the data was
            # JSON, so validate it in JSON mode.
            return cls.model_validate_json(json.dumps(d))
        return cls.model_validate(d)
    except Exception as e:
        raise PathError(f"pydantic rejected the stored {cls.__qualname__}: {e}") from e


def _pydantic(cls: type) -> Codec:
    name = cls.__qualname__
    root = bool(getattr(cls, "__pydantic_root_model__", False))

    def enc(v: object) -> object:
        if type(v) is not cls:
            if isinstance(v, cls) and not root:
                return _tag_subclass(v)
            if not isinstance(v, cls):
                raise _mismatch(name, v)
        return _pydantic_dump(v)

    def dec(d: object) -> object:
        if not root and type(d) is dict and RESERVED in d:
            return _from_tagged(d, cls, name)
        return _pydantic_load(cls, d)

    # A RootModel dumps as its root, which may be any JSON kind.
    return Codec(name, enc, dec, ANY_KIND if root else OBJECT, (cls,))


# --- the self-describing encoding (hint Any) ---------------------------------------------------

def enc_any(v: object) -> object:
    """Encode ``v`` with no hint: JSON values as they are, everything else tagged."""
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    encoder = _ANY_ENCODERS.get(t)
    if encoder is not None:
        return encoder(v)
    return _enc_any_object(v)


def _enc_any_float(v: float) -> object:
    return v if v - v == 0.0 else _nonfinite(v)


def _enc_any_mapping(v: abc.Mapping[Any, Any], venc: Encoder = enc_any) -> object:
    if RESERVED not in v and all(type(k) is str for k in v):
        return _enc_object(v, _identity, venc)
    # Non-str keys, or a user key that is our reserved key: key/value pairs under a tag.
    return {RESERVED: "dict", "v": _enc_pairs(v, enc_any, venc)}


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
    list: lambda v: _enc_items(v, enc_any),
    dict: _enc_any_mapping,
    tuple: lambda v: _tagged("tuple", _enc_items(v, enc_any)),
    set: lambda v: _tagged("set", _enc_set_items(v, enc_any)),
    frozenset: lambda v: _tagged("frozenset", _enc_set_items(v, enc_any)),
    bytes: lambda v: _tagged("bytes", _b64(v)),
    bytearray: lambda v: _tagged("bytearray", _b64(v)),
    dt.datetime: lambda v: _tagged("datetime", _temporal(v)),
    dt.date: lambda v: _tagged("date", v.isoformat()),
    dt.time: lambda v: _tagged("time", _temporal(v)),
    dt.timedelta: lambda v: _tagged("timedelta", _enc_timedelta(v)),
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
    if len(_REFS) < _CACHE_LIMIT:
        _REFS[cls] = ref
    return ref


def _enc_any_object(v: object) -> object:
    cls = type(v)
    if isinstance(v, enum.Enum):
        return {RESERVED: "enum", "t": _class_ref(cls), "v": enc_any(v.value)}
    if dataclasses.is_dataclass(cls):
        return {RESERVED: "dataclass", "t": _class_ref(cls), "v": codec_for(cls).enc(v)}
    if isinstance(v, tuple) and hasattr(cls, "_fields"):
        return {RESERVED: "namedtuple", "t": _class_ref(cls), "v": codec_for(cls).enc(v)}
    if _is_pydantic_class(cls):
        return {RESERVED: "pydantic", "t": _class_ref(cls), "v": _pydantic_dump(v)}
    raise PathError(f"object of type {cls.__qualname__} is not encodable")


def _is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _is_pydantic_class_importing(cls: type) -> bool:
    try:
        importlib.import_module("pydantic")
    except ImportError:
        return False
    return _is_pydantic_class(cls)


# What a stored class reference must turn out to be before anything of it is called.
_CLASS_KINDS: dict[str, Callable[[type], bool]] = {
    "enum": lambda cls: issubclass(cls, enum.Enum),
    "dataclass": dataclasses.is_dataclass,
    "namedtuple": _is_namedtuple_class,
    "pydantic": _is_pydantic_class_importing,
}


def _import_class(d: dict[str, Any]) -> type:
    kind = d[RESERVED]
    ref = d.get("t")
    if type(ref) is not str or ref.count(":") != 1:
        raise PathError(f"malformed class reference {_show(ref)} in stored {kind}")
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
    data = _payload(d)
    if d[RESERVED] == "enum":
        try:
            return typing.cast(Any, cls)(dec_any(data))
        except ValueError as e:
            raise _bad_data(cls.__qualname__, data) from e
    if d[RESERVED] == "pydantic":
        return _pydantic_load(cls, data)
    return codec_for(cls).dec(data)


def _dec_any_path(d: dict[str, Any]) -> object:
    cls = _PATH_CLASSES.get(d.get("t"))  # type: ignore[arg-type]
    if cls is None:
        raise _bad_data("path", d)
    return _path(cls).dec(_payload(d))


def _dec_any_dict(d: dict[str, Any]) -> object:
    return _dec_pairs(_payload(d), dec_any, dec_any, "dict")


def _dec_any_list(d: object) -> list[object]:
    if type(d) is list:
        return _dec_items(d, dec_any)
    raise _bad_data("list", d)


def _dec_any_set(d: dict[str, Any]) -> object:
    items = _dec_any_list(_payload(d))
    try:
        return (frozenset if d[RESERVED] == "frozenset" else set)(items)
    except TypeError as e:
        raise _bad_data(d[RESERVED], d) from e


_ANY_DECODERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "float": _dec_nonfinite,
    "dict": _dec_any_dict,
    "tuple": lambda d: tuple(_dec_any_list(_payload(d))),
    "set": _dec_any_set,
    "frozenset": _dec_any_set,
    "bytes": lambda d: _unb64(_payload(d), "bytes"),
    "bytearray": lambda d: bytearray(_unb64(_payload(d), "bytearray")),
    "datetime": lambda d: _dec_datetime(_payload(d)),
    "date": lambda d: _dec_date(_payload(d)),
    "time": lambda d: _dec_time(_payload(d)),
    "timedelta": lambda d: _dec_timedelta(_payload(d)),
    "uuid": lambda d: _dec_uuid(_payload(d)),
    "decimal": lambda d: _dec_decimal(_payload(d)),
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
        return _dec_items(d, dec_any)  # type: ignore[arg-type]
    if t is dict:
        if RESERVED not in d:  # type: ignore[operator]
            return _dec_object(d, _identity, dec_any)  # type: ignore[arg-type]
        decoder = _ANY_DECODERS.get(d[RESERVED])  # type: ignore[index]
        if decoder is None:
            raise PathError(f"unknown tag {_show(d[RESERVED])}")  # type: ignore[index]
        return decoder(d)  # type: ignore[arg-type]
    raise _bad_data("JSON value", d)


ANY = Codec("Any", enc_any, dec_any, ANY_KIND, (object,))


# --- type hints --------------------------------------------------------------------------------

def resolve_hints(obj: object) -> dict[str, object]:
    """``typing.get_type_hints(obj, include_extras=True)``, tolerating unresolvable names.

    A forward reference to a name that does not exist (or not yet) makes ``get_type_hints``
    fail as a whole; then each annotation is evaluated on its own and the ones that still fail
    become ``Any``, so one bad hint costs only its own typing.
    """
    return resolve_hints_status(obj)[0]


def resolve_hints_status(obj: object) -> tuple[dict[str, object], bool]:
    """:func:`resolve_hints`, and whether every annotation resolved."""
    try:
        return dict(typing.get_type_hints(obj, include_extras=True)), True
    except Exception:  # NameError for a forward reference, TypeError for an odd object, ...
        pass
    hints: dict[str, object] = {}
    complete = True
    owners: Iterable[Any] = reversed(obj.__mro__) if isinstance(obj, type) else (obj,)
    for owner in owners:
        try:
            raw = inspect.get_annotations(owner)
        except Exception:
            complete = False
            continue
        if isinstance(owner, type):
            module = sys.modules.get(owner.__module__)
            globalns: dict[str, Any] = getattr(module, "__dict__", {})
            localns: dict[str, Any] | None = {**vars(owner), owner.__name__: owner}
        else:
            globalns = getattr(owner, "__globals__", {})
            localns = None
        for name, annotation in raw.items():
            if isinstance(annotation, str):
                try:
                    # The same evaluation get_type_hints performs, one annotation at a time.
                    annotation = eval(annotation, globalns, localns)
                except Exception:
                    annotation, complete = Any, False
            hints[name] = annotation
    return hints, complete
