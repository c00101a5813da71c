"""The typed codec: round-trips by hint and under Any, strict JSON, time zones, evolution."""

import datetime as dt
import math
import uuid
import zoneinfo
from decimal import Decimal

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perdure.codec.functions import decode, dumps, encode, loads
from perdure.codec.types import RESERVED
from perdure.errors import SerializationError
from tests.unit.codec import samples
from tests.unit.codec.samples import (
    BY_HINT,
    NAMED,
    NEW_YORK,
    PARIS,
    PLUS2,
    UTC,
    Cat,
    Color,
    Computed,
    Item,
    Node,
    VipCustomer,
    _assert_strict_json,
    _roundtrip,
)


@pytest.mark.parametrize(("value", "hint"), BY_HINT, ids=lambda x: repr(x)[:40])
def test_round_trip_by_hint(value: object, hint: object) -> None:
    _roundtrip(value, hint)


@pytest.mark.parametrize("value", [v for v, _ in BY_HINT if not isinstance(v, dict)
                                   or v.keys() - {"title", "year", "released"}],
                         ids=lambda x: repr(x)[:40])
def test_round_trip_under_any(value: object) -> None:
    _roundtrip(value)


def test_pydantic_under_any() -> None:
    customer = VipCustomer(name="bob", joined=dt.datetime(2024, 1, 1), level=3)
    back = _roundtrip_model(customer)
    assert type(back) is VipCustomer


def _roundtrip_model(model: pydantic.BaseModel) -> object:
    back = loads(dumps([model]))
    assert isinstance(back, list)
    assert back == [model]
    return back[0]


def test_typed_encodings_are_plain_json() -> None:
    assert encode(dt.datetime(2024, 1, 2, 3, 4, tzinfo=PLUS2), dt.datetime) \
        == "2024-01-02T03:04:00+02:00"
    assert encode(dt.datetime(2024, 1, 2, 3, 4), dt.datetime) == "2024-01-02T03:04:00"
    assert encode(dt.datetime(2024, 7, 1, tzinfo=PARIS), dt.datetime) \
        == {"iso": "2024-07-01T00:00:00+02:00", "zone": "Europe/Paris"}
    assert encode(Decimal("1.10"), Decimal) == "1.10"
    assert encode(b"hi", bytes) == "aGk="
    assert encode(Color.RED, Color) == "red"
    assert encode({1: "a"}, dict[int, str]) == [[1, "a"]]
    assert encode({Color.RED: 1}, dict[Color, int]) == {"red": 1}
    assert encode(Item("a", 1, Decimal(1)), Item) == {"sku": "a", "qty": 1, "price": "1"}
    assert encode(5, int | str) == 5
    assert encode(None, Item | None) is None
    assert encode(Cat("tom"), Item | Cat) == {
        RESERVED: "union", "m": f"{samples.__name__}.Cat", "v": {"name": "tom"}}
    assert dumps([1, "a", None]) == '[1,"a",null]'


def test_under_any_types_survive_as_tags() -> None:
    assert encode((1, 2)) == {RESERVED: "tuple", "v": [1, 2]}
    assert encode(dt.date(2024, 1, 1)) == {RESERVED: "date", "v": "2024-01-01"}
    assert encode(Color.RED) == {RESERVED: "enum", "t": f"{samples.__name__}:Color", "v": "red"}
    assert encode(Cat("x")) == {RESERVED: "dataclass", "t": f"{samples.__name__}:Cat",
                                "v": {"name": "x"}}
    assert encode(math.nan) == {RESERVED: "float", "v": "nan"}
    # A user dict holding the reserved key is escaped, and comes back as it was.
    assert encode({RESERVED: "date", "v": "2024-01-01"}) == {
        RESERVED: "dict", "v": [[RESERVED, "date"], ["v", "2024-01-01"]]}
    _roundtrip({RESERVED: "date", "v": "2024-01-01"})
    _roundtrip([{"a": {RESERVED: {RESERVED: 1}}}])


def test_timezones_round_trip_exactly() -> None:
    odd_offsets = (dt.timezone(dt.timedelta(seconds=30)),
                   dt.timezone(dt.timedelta(microseconds=-1), "tiny"),
                   dt.timezone(dt.timedelta(hours=3, microseconds=5)))
    for tz in (UTC, PLUS2, NAMED, PARIS, *odd_offsets):
        back = loads(dumps(dt.datetime(2024, 3, 31, 2, 30, tzinfo=tz), dt.datetime), dt.datetime)
        assert isinstance(back, dt.datetime)
        assert back.tzinfo == tz
        assert back.tzname() == dt.datetime(2024, 3, 31, 2, 30, tzinfo=tz).tzname()
        _roundtrip(dt.time(4, 5, tzinfo=tz), dt.time)
        _roundtrip(dt.datetime(2024, 3, 31, 2, 30, tzinfo=tz))
    back = loads(dumps(dt.datetime(2024, 7, 1, tzinfo=PARIS)))
    assert isinstance(back, dt.datetime)
    assert type(back.tzinfo) is zoneinfo.ZoneInfo
    assert back.tzinfo.key == "Europe/Paris"


def test_unsupported_tzinfo_is_refused() -> None:
    class Odd(dt.tzinfo):
        def utcoffset(self, _: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

        def dst(self, _: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

        def tzname(self, _: dt.datetime | None) -> str:
            return "odd"

    with pytest.raises(SerializationError, match=r"tzinfo of type .*Odd cannot be encoded"):
        dumps(dt.datetime(2024, 1, 1, tzinfo=Odd()), dt.datetime)


def test_text_is_strict_compact_json() -> None:
    value = [math.nan, math.inf, -math.inf, {"é": "☃"}, Decimal("NaN")]
    text = dumps(value)
    _assert_strict_json(text)
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text
    assert "☃" in text  # not \\u-escaped: compact
    assert " " not in text


def test_lone_surrogates_stay_valid_utf8() -> None:
    value = "bad\udcffname"
    text = dumps(value, str)
    text.encode("utf-8")
    assert loads(text, str) == value


def test_non_strict_input_text_is_refused() -> None:
    with pytest.raises(SerializationError, match="strict JSON"):
        loads("[NaN]")
    with pytest.raises(SerializationError, match="invalid JSON"):
        loads("{")


def test_sets_encode_deterministically() -> None:
    assert dumps({"b", "c", "a"}, set[str]) == '["a","b","c"]'
    assert dumps({(2, "b"), (1, "a")}) == dumps({(1, "a"), (2, "b")})


def test_union_member_order_does_not_matter_for_stored_data() -> None:
    text = dumps(Cat("tom"), Item | Cat)
    assert loads(text, Cat | Item) == Cat("tom")
    assert loads(dumps(7, int | str), str | int) == 7


def test_dataclass_schema_evolution() -> None:
    # A field added with a default reads old data; an unknown stored key is ignored.
    assert decode({"value": 1}, Node) == Node(1, [])
    assert decode({"value": 1, "gone": True}, Node) == Node(1, [])
    with pytest.raises(SerializationError, match="no field 'value'"):
        decode({}, Node)


def test_dataclass_init_false_field_is_restored() -> None:
    value = Computed(2)
    value.doubled = 99
    back = loads(dumps(value, Computed), Computed)
    assert isinstance(back, Computed)
    assert back.doubled == 99


# --- hypothesis --------------------------------------------------------------------------------

_timezones = st.one_of(st.none(), st.just(UTC), st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
), st.sampled_from([PARIS, NEW_YORK, NAMED]))
_hashables = st.one_of(st.integers(), st.text(), st.uuids(), st.dates(), st.booleans())
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
    st.datetimes(timezones=_timezones), st.dates(), st.times(timezones=_timezones),
    st.timedeltas(), st.uuids(), st.decimals(), st.sampled_from(list(Color)),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text() | st.just(RESERVED), children, max_size=4),
        st.dictionaries(_hashables | st.tuples(st.integers()), children, max_size=4),
        st.frozensets(_hashables, max_size=4),
        st.sets(_hashables, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_property_round_trip_under_any(value: object) -> None:
    _roundtrip(value)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.dates(), st.lists(st.tuples(
    st.datetimes(timezones=_timezones), st.decimals(), st.uuids() | st.none()), max_size=3),
    max_size=3))
def test_property_round_trip_by_hint(value: object) -> None:
    _roundtrip(value, dict[dt.date, list[tuple[dt.datetime, Decimal, uuid.UUID | None]]])
