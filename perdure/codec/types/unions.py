"""Codecs of ``Union`` and ``Optional`` hints.

Members whose encodings are different JSON kinds need no tag; otherwise the encoding names the
member it used, by qualified name, so reordering the union keeps old data readable.
"""

from __future__ import annotations

import typing
from typing import Any

from perdure.codec.types.base import (
    ARRAY,
    BOOL,
    KIND_OF,
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
from perdure.codec.types.cache import codec_for
from perdure.codec.types.choices import literal_codec
from perdure.codec.types.errors import PathError, bad_data, mismatch
from perdure.codec.types.hints import member_key, strip_annotated
from perdure.codec.types.scalars import NONE
from perdure.codec.types.tagged import ANY


def union_codec(args: tuple[Any, ...]) -> Codec:
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
        hint = strip_annotated(arg)
        if hint is None or hint is NoneType:
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
            codec = literal_codec(tuple(literal_values))
            members.append((codec.name, codec))
        else:
            members.append((member_key(hint), codec_for(hint)))
    if not members:
        return NONE
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
        accepts += (NoneType,)
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
                 (*inner.accepts, NoneType))


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
    raise mismatch(name, v)


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
        decoder = by_kind.get(KIND_OF.get(type(d), 0))
        if decoder is None:
            raise bad_data(name, d)
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
                return decoder(payload(d))
            raise PathError(f"stored union member {d.get('m')!r} is not a member of {name}")
        raise bad_data(name, d)

    return Codec(name, enc, dec, OBJECT | (NULL if has_none else 0), accepts)
