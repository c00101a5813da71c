"""Codecs of scalar hints: None, bool, int, float, str, bytes, bytearray, datetime, date, time,
timedelta, UUID, Decimal and pathlib paths.

Also the pieces of them the self-describing encoding reuses: base64 text, ISO text of a
datetime or time with whatever zone information ISO text cannot hold, tagged NaN and infinities.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import pathlib
import typing
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from perdure.codec.types.base import (
    BOOL,
    NULL,
    NUMBER,
    OBJECT,
    RESERVED,
    STRING,
    Codec,
    Decoder,
    Encoder,
    NoneType,
    payload,
)
from perdure.codec.types.errors import PathError, bad_data, mismatch


def _enc_none(v: object) -> object:
    if v is None:
        return None
    raise mismatch("None", v)


def _dec_none(d: object) -> object:
    if d is None:
        return None
    raise bad_data("None", d)


def _enc_bool(v: object) -> object:
    if type(v) is bool:
        return v
    raise mismatch("bool", v)


def _dec_bool(d: object) -> object:
    if type(d) is bool:
        return d
    raise bad_data("bool", d)


def _enc_int(v: object) -> object:
    # bool is an int to Python and to type checkers; keep it a JSON bool so it comes back a bool.
    if type(v) is int or type(v) is bool:
        return v
    if isinstance(v, int):
        return int(v)  # an IntEnum or other subclass, as the plain int the hint promises
    raise mismatch("int", v)


def _dec_int(d: object) -> object:
    if type(d) is int or type(d) is bool:
        return d
    raise bad_data("int", d)


def nonfinite(v: float) -> dict[str, object]:
    return {RESERVED: "float", "v": "nan" if v != v else ("inf" if v > 0 else "-inf")}


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def dec_nonfinite(d: dict[str, Any]) -> float:
    try:
        return _NONFINITE[payload(d)]
    except (KeyError, TypeError):
        raise bad_data("float", d) from None


def _enc_float(v: object) -> object:
    t = type(v)
    if t is float:
        f = typing.cast(float, v)
        # NaN and infinities are not JSON; tag them so the text stays strict JSON.
        return f if f - f == 0.0 else nonfinite(f)
    if t is int or t is bool:
        return v  # int is acceptable where float is hinted; keep it an int, exactly
    if isinstance(v, float):
        return _enc_float(float(v))
    if isinstance(v, int):
        return int(v)
    raise mismatch("float", v)


def _dec_float(d: object) -> object:
    t = type(d)
    if t is float or t is int or t is bool:
        return d
    if t is dict and d.get(RESERVED) == "float":  # type: ignore[attr-defined]
        return dec_nonfinite(d)  # type: ignore[arg-type]
    raise bad_data("float", d)


def _enc_str(v: object) -> object:
    if type(v) is str:
        return v
    if isinstance(v, str):
        return str.__str__(v)  # the plain str value of a subclass (a StrEnum member, say)
    raise mismatch("str", v)


def _dec_str(d: object) -> object:
    if type(d) is str:
        return d
    raise bad_data("str", d)


def b64(v: bytes | bytearray) -> str:
    return base64.b64encode(v).decode("ascii")


def unb64(d: object, what: str) -> bytes:
    if type(d) is str:
        try:
            return base64.b64decode(d, validate=True)
        except ValueError:
            pass
    raise bad_data(what, d)


def _enc_bytes(v: object) -> object:
    if type(v) is bytes:
        return b64(v)
    raise mismatch("bytes", v)


def _enc_bytearray(v: object) -> object:
    if type(v) is bytearray:
        return b64(v)
    raise mismatch("bytearray", v)


def temporal(v: dt.datetime | dt.time) -> object:
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
        raise bad_data(what, d) from e
    raise bad_data(what, d)


def _enc_datetime(v: object) -> object:
    if isinstance(v, dt.datetime):
        return temporal(v)
    raise mismatch("datetime", v)


def dec_datetime(d: object) -> object:
    return _untemporal(d, dt.datetime.fromisoformat, "datetime")


def _enc_date(v: object) -> object:
    if type(v) is dt.date:
        return v.isoformat()
    if isinstance(v, dt.datetime):
        return temporal(v)  # a datetime is a date too; it keeps its time (the data says which)
    if isinstance(v, dt.date):
        return dt.date(v.year, v.month, v.day).isoformat()
    raise mismatch("date", v)


def dec_date(d: object) -> object:
    if type(d) is str and len(d) == 10:
        try:
            return dt.date.fromisoformat(d)
        except ValueError as e:
            raise bad_data("date", d) from e
    return _untemporal(d, dt.datetime.fromisoformat, "date")


def _enc_time(v: object) -> object:
    if isinstance(v, dt.time):
        return temporal(v)
    raise mismatch("time", v)


def dec_time(d: object) -> object:
    return _untemporal(d, dt.time.fromisoformat, "time")


def enc_timedelta(v: object) -> object:
    if isinstance(v, dt.timedelta):
        # Whole microseconds: exact over timedelta's entire range (a float of seconds is not).
        return (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
    raise mismatch("timedelta", v)


def dec_timedelta(d: object) -> object:
    if type(d) is int:
        try:
            return dt.timedelta(microseconds=d)
        except OverflowError as e:
            raise bad_data("timedelta", d) from e
    raise bad_data("timedelta", d)


def _enc_uuid(v: object) -> object:
    if isinstance(v, uuid.UUID):
        return str(v)
    raise mismatch("UUID", v)


def dec_uuid(d: object) -> object:
    if type(d) is str:
        try:
            return uuid.UUID(d)
        except ValueError as e:
            raise bad_data("UUID", d) from e
    raise bad_data("UUID", d)


def _enc_decimal(v: object) -> object:
    if isinstance(v, decimal.Decimal):
        return str(v)  # exact, including NaN, infinities and -0
    raise mismatch("Decimal", v)


def dec_decimal(d: object) -> object:
    if type(d) is str:
        try:
            value = decimal.Decimal(d)
        except (decimal.InvalidOperation, ValueError) as e:
            raise bad_data("Decimal", d) from e
        # Under a context that does not trap InvalidOperation, junk parses as NaN.
        if not value.is_nan() or "nan" in d.lower():
            return value
    raise bad_data("Decimal", d)


def _scalar(name: str, enc: Encoder, dec: Decoder, kinds: int, *accepts: type) -> Codec:
    return Codec(name, enc, dec, kinds, accepts)


NONE = _scalar("None", _enc_none, _dec_none, NULL, NoneType)
SCALARS: dict[type, Codec] = {
    NoneType: NONE,
    bool: _scalar("bool", _enc_bool, _dec_bool, BOOL, bool),
    int: _scalar("int", _enc_int, _dec_int, NUMBER | BOOL, int),
    float: _scalar("float", _enc_float, _dec_float, NUMBER | BOOL | OBJECT, int, float),
    str: _scalar("str", _enc_str, _dec_str, STRING, str),
    bytes: _scalar("bytes", _enc_bytes, lambda d: unb64(d, "bytes"), STRING, bytes),
    bytearray: _scalar("bytearray", _enc_bytearray, lambda d: bytearray(unb64(d, "bytearray")),
                       STRING, bytearray),
    dt.datetime: _scalar("datetime", _enc_datetime, dec_datetime, STRING | OBJECT, dt.datetime),
    dt.date: _scalar("date", _enc_date, dec_date, STRING | OBJECT, dt.date),
    dt.time: _scalar("time", _enc_time, dec_time, STRING | OBJECT, dt.time),
    dt.timedelta: _scalar("timedelta", enc_timedelta, dec_timedelta, NUMBER, dt.timedelta),
    uuid.UUID: _scalar("UUID", _enc_uuid, dec_uuid, STRING, uuid.UUID),
    decimal.Decimal: _scalar("Decimal", _enc_decimal, dec_decimal, STRING, decimal.Decimal),
}


def path_codec(cls: type[pathlib.PurePath]) -> Codec:
    name = cls.__qualname__

    def enc(v: object) -> object:
        if isinstance(v, cls):
            return str(v)
        raise mismatch(name, v)

    def dec(d: object) -> object:
        if type(d) is str:
            try:
                return cls(d)
            except Exception as e:  # e.g. a WindowsPath on a POSIX system
                raise bad_data(name, d) from e
        raise bad_data(name, d)

    return Codec(name, enc, dec, STRING, (cls,))
