"""The Codec record of one compiled hint, the JSON kinds it produces, and the reserved tag key.

Every other module of the package builds or combines :class:`Codec` objects; this one holds
what they all share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perdure.codec.types.errors import PathError

#: The one key reserved for tags in the self-describing encoding.
RESERVED = "$perdure"

# JSON kinds a codec can produce, as bit flags. A union whose members produce disjoint kinds is
# decoded by looking at the data alone; otherwise its encoding names the member (see unions).
NULL, BOOL, NUMBER, STRING, ARRAY, OBJECT = 1, 2, 4, 8, 16, 32
ANY_KIND = NULL | BOOL | NUMBER | STRING | ARRAY | OBJECT
KIND_OF: dict[type, int] = {
    type(None): NULL, bool: BOOL, int: NUMBER, float: NUMBER, str: STRING, list: ARRAY,
    dict: OBJECT,
}

Encoder = Callable[[Any], object]
Decoder = Callable[[Any], object]
NoneType = type(None)


def payload(data: dict[str, Any], key: str = "v") -> Any:
    """``data[key]`` of a tagged object, or a PathError saying the key is missing."""
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
