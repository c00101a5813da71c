"""Types and helpers the codec tests share (module level, so the self-describing encoding
can import them by name)."""

import dataclasses
import datetime as dt
import enum
import json
import math
import pathlib
import typing
import uuid
import zoneinfo
from collections.abc import Mapping, MutableSequence, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import (
    Annotated,
    Any,
    Generic,
    Literal,
    NamedTuple,
    NewType,
    NotRequired,
    TypedDict,
    TypeVar,
)

import pydantic
from typing_extensions import TypedDict as ExtTypedDict

from perdure.codec.functions import dumps, loads
from perdure.codec.types import RESERVED

# --- types under test (module level, so the self-describing encoding can import them) ---------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"
    SAFE = "safe"


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


class Shape(enum.Enum):
    POINT = (0, 0)
    UNIT = (1, 1)


@dataclasses.dataclass
class Item:
    sku: str
    qty: int
    price: Decimal


@dataclasses.dataclass(frozen=True)
class Order:
    id: uuid.UUID
    items: list[Item]
    placed: dt.datetime
    note: str | None = None
    tags: frozenset[str] = frozenset()


@dataclasses.dataclass
class Node:
    value: int
    children: list["Node"] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Computed:
    a: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.doubled = self.a * 2


@dataclasses.dataclass
class Animal:
    name: str


@dataclasses.dataclass
class Dog(Animal):
    good: bool = True


@dataclasses.dataclass
class Cat:
    name: str


@dataclasses.dataclass(slots=True, kw_only=True)
class Settings:
    retries: int = 3
    timeout: dt.timedelta = dt.timedelta(seconds=30)


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


@dataclasses.dataclass
class Anything:
    payload: Any


class Point(NamedTuple):
    x: int
    y: int = 0


class Movie(ExtTypedDict):  # typing_extensions' own TypedDict on Python 3.11
    title: str
    year: int
    released: NotRequired[dt.date]


class Rating(TypedDict, total=False):
    stars: int
    at: dt.datetime


class Customer(pydantic.BaseModel):
    name: str
    joined: dt.datetime
    tags: list[str] = []
    score: Decimal = Decimal("0")


class VipCustomer(Customer):
    level: int = 1


UserId = NewType("UserId", int)


class NotAData:
    """A plain class: never constructible from stored data."""


def _same(a: object, b: object) -> bool:
    """Equal *and* of the same types all the way down (1 vs True vs 1.0 differ), NaN-aware."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)  # NaN equals NaN, -0.0 differs from 0.0
    if isinstance(a, Decimal):
        return str(a) == str(b)  # exact digits, and sNaN cannot be compared with ==
    if isinstance(a, dt.datetime | dt.time):
        return repr(a) == repr(b) and a.fold == typing.cast(Any, b).fold
    if isinstance(a, list | tuple):
        return len(a) == len(typing.cast(Any, b)) and all(
            _same(x, y) for x, y in zip(a, typing.cast(Any, b), strict=True))
    if isinstance(a, dict):
        bd = typing.cast(dict[Any, Any], b)
        return ([(type(k), k) for k in a] == [(type(k), k) for k in bd]
                and all(_same(a[k], bd[k]) for k in a))
    if isinstance(a, set | frozenset):
        return {(type(x), x) for x in a} == {(type(y), y) for y in typing.cast(Any, b)}
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def _roundtrip(value: object, hint: object = Any) -> object:
    text = dumps(value, hint)
    _assert_strict_json(text)
    back = loads(text, hint)
    assert _same(value, back), (value, back, text)
    return back


def _assert_strict_json(text: str) -> None:
    def reject(name: str) -> object:
        raise AssertionError(f"{name} in {text}")

    json.loads(text, parse_constant=reject)
    text.encode("utf-8")  # storable as UTF-8
    assert ", " not in text or '"' in text  # compact separators (", " only inside strings)


UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
NAMED = dt.timezone(dt.timedelta(hours=-5, minutes=-30), "Somewhere")
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
U1 = uuid.UUID("12345678-1234-5678-1234-567812345678")

ORDER = Order(U1, [Item("a", 1, Decimal("9.99")), Item("b", 2, Decimal("0.10"))],
              dt.datetime(2024, 5, 1, 12, 0, tzinfo=PARIS), None, frozenset({"x", "y"}))

# (value, hint) pairs: each must come back identical, types included.
BY_HINT: list[tuple[object, object]] = [
    (None, None),
    (None, type(None)),
    (True, bool),
    (7, int),
    (-(2**80), int),
    (True, int),
    (1.5, float),
    (3, float),
    (-0.0, float),
    (math.inf, float),
    (-math.inf, float),
    (math.nan, float),
    ("héllo ☃", str),
    ("", str),
    (b"\x00\xffbytes", bytes),
    (bytearray(b"abc"), bytearray),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.datetime),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), dt.datetime),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PLUS2), dt.datetime),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=NAMED), dt.datetime),
    (dt.datetime(2024, 7, 1, 9, 0, tzinfo=PARIS), dt.datetime),
    (dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NEW_YORK), dt.datetime),
    (dt.datetime(2024, 11, 3, 1, 30, fold=0, tzinfo=NEW_YORK), dt.datetime),
    (dt.date(2024, 2, 29), dt.date),
    (dt.datetime(2024, 2, 29, 10, 0), dt.date),  # a datetime is a date; it stays a datetime
    (dt.time(23, 59, 59, 999999), dt.time),
    (dt.time(8, 0, tzinfo=PLUS2), dt.time),
    (dt.time(8, 0, tzinfo=PARIS), dt.time),
    (dt.timedelta(days=-3, seconds=5, microseconds=7), dt.timedelta),
    (dt.timedelta.max, dt.timedelta),
    (U1, uuid.UUID),
    (Decimal("1.10"), Decimal),
    (Decimal("-0"), Decimal),
    (Decimal("NaN"), Decimal),
    (Decimal("-Infinity"), Decimal),
    (Decimal("1E+400"), Decimal),
    (Color.GREEN, Color),
    (Priority.HIGH, Priority),
    (Mode.SAFE, Mode),
    (Perm.R | Perm.W, Perm),
    (Shape.UNIT, Shape),
    (pathlib.Path("/tmp/x y"), pathlib.Path),
    (pathlib.PurePosixPath("a/b"), pathlib.PurePosixPath),
    (ORDER, Order),
    (Node(1, [Node(2), Node(3, [Node(4)])]), Node),
    (Settings(retries=5), Settings),
    (Box(Item("c", 3, Decimal(1))), Box[Item]),
    (Box(dt.date(2020, 1, 1)), Box[dt.date]),
    (Anything({"k": (1, 2), "when": dt.date(2021, 1, 1)}), Anything),
    (Point(1, 2), Point),
    ({"title": "Alien", "year": 1979, "released": dt.date(1979, 5, 25)}, Movie),
    ({"title": "Heat", "year": 1995}, Movie),
    ({"stars": 5, "at": dt.datetime(2024, 1, 1)}, Rating),
    ({}, Rating),
    (5, UserId),
    (5, Annotated[int, "metadata", object()]),
    ("b", Literal["a", "b"]),
    (2, Literal[1, 2, "x"]),
    (Color.RED, Literal[Color.RED]),
    ([1, 2, 3], list[int]),
    ([[1], []], list[list[int]]),
    ((1, "a", None), tuple[int, str, None]),
    ((), tuple[()]),
    ((1, 2, 3), tuple[int, ...]),
    ({"a": 1}, dict[str, int]),
    ({RESERVED: 1, "x": {RESERVED: "tuple"}}, dict[str, Any]),
    ({1: "a", -2: "b"}, dict[int, str]),
    ({U1: 1}, dict[uuid.UUID, int]),
    ({dt.date(2024, 1, 1): [Decimal("1")]}, dict[dt.date, list[Decimal]]),
    ({Color.RED: 1, Color.GREEN: 2}, dict[Color, int]),
    ({Priority.LOW: "l"}, dict[Priority, str]),
    ({(1, 2): "pair"}, dict[tuple[int, int], str]),
    ({"a": 1, 2: "b", (3,): None}, dict[Any, Any]),
    ({"plain": 1}, dict),
    ({3, 1, 2}, set[int]),
    (frozenset({"b", "a"}), frozenset[str]),
    ({dt.date(2024, 1, 1), dt.date(2023, 1, 1)}, set[dt.date]),
    ([1, 2], Sequence[int]),
    ([1, 2], MutableSequence[int]),
    ({"a": dt.time(1)}, Mapping[str, dt.time]),
    ({1, 2}, AbstractSet[int]),
    ([1, "x", (2,)], list),
    ((1, [2]), tuple),
    (None, int | None),
    (4, int | None),
    (4, typing.Optional[int]),  # noqa: UP045 - the typing spelling must work too
    ("s", int | str),
    (7, int | str),
    (True, bool | str),
    (2, int | float),
    (2.5, int | float),
    (math.nan, float | None),
    (Item("a", 1, Decimal(2)), Item | Cat | None),
    (Cat("tom"), Item | Cat | None),
    (None, Item | Cat | None),
    (dt.date(2024, 1, 1), dt.date | dt.datetime),
    (dt.datetime(2024, 1, 1, 5), dt.datetime | dt.date),
    (["a"], list[int] | list[str]),
    ("2024-01-01", dt.date | str),
    (dt.date(2024, 1, 1), dt.date | str),
    ("x", Literal["a"] | Literal["x"] | int),
    (None, Literal[None, "a"] | int),
    (None, typing.Optional[Literal[None, "a"]]),  # noqa: UP045
    (Dog("rex", good=False), Animal),
    ([Dog("rex"), Animal("generic")], list[Animal]),
    (Customer(name="ann", joined=dt.datetime(2024, 1, 1, tzinfo=UTC), tags=["a"]), Customer),
    (VipCustomer(name="bob", joined=dt.datetime(2024, 1, 1), level=3), Customer),
    ([Customer(name="c", joined=dt.datetime(2024, 1, 1))], list[Customer]),
    ({"x": 1}, object),
    ({"x": 1}, "UnresolvableName"),
]


# --- a function whose calls the error tests encode and decode ----------------------------

@dataclasses.dataclass
class Cart:
    items: list[Any]


def checkout(order: Cart, *, express: bool = False) -> int:
    return len(order.items)
