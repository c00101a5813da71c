"""FunctionCodec: call signatures, hints resolved late, caching."""

import dataclasses
import datetime as dt
import functools
import json
import typing
import uuid
from decimal import Decimal
from typing import (
    Annotated,
    Any,
)

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perdure.codec.functions import FunctionCodec, dumps, loads
from perdure.codec.types import RESERVED, codec_for
from perdure.errors import SerializationError
from tests.unit.codec.samples import (
    ORDER,
    U1,
    Color,
    Item,
    Order,
    T,
    UserId,
    _assert_strict_json,
    _roundtrip,
    _same,
    checkout,
)

# --- FunctionCodec -----------------------------------------------------------------------------


def signature_zoo(a: int, b: dt.date, /, c: str = "c", *rest: Decimal, d: UserId,
                  e: Color = Color.RED, **extra: uuid.UUID) -> dict[int, dt.date]:
    return {a: b}


def _call_both_ways(codec: FunctionCodec, fn: typing.Callable[..., object],
                    args: tuple[object, ...], kwargs: dict[str, object]) -> str:
    text = codec.encode_args(args, kwargs)
    _assert_strict_json(text)
    back_args, back_kwargs = codec.decode_args(text)
    expected = typing.cast(Any, fn)(*args, **kwargs)
    assert _same(typing.cast(Any, fn)(*back_args, **back_kwargs), expected)
    # The decoded call binds to exactly the same arguments.
    import inspect
    original = inspect.signature(fn).bind(*args, **kwargs).arguments
    restored = inspect.signature(fn).bind(*back_args, **back_kwargs).arguments
    assert _same(dict(original), dict(restored))
    return text


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1, dt.date(2024, 1, 1)), {"d": 5}),
    ((1, dt.date(2024, 1, 1), "x"), {"d": 5, "e": Color.GREEN}),
    ((1, dt.date(2024, 1, 1), "x", Decimal("1.5"), Decimal("-2")), {"d": 5}),
    ((1, dt.date(2024, 1, 1)), {"c": "kw", "d": 5, "z": U1, "y": uuid.UUID(int=0)}),
    ((1, dt.date(2024, 1, 1)), {"d": 5, "a": U1}),  # 'a' is positional-only: goes to **extra
])
def test_function_codec_signature_shapes(args: tuple[object, ...],
                                         kwargs: dict[str, object]) -> None:
    codec = FunctionCodec(signature_zoo)
    _call_both_ways(codec, signature_zoo, args, kwargs)


def test_function_codec_layout_and_canonical_order() -> None:
    codec = FunctionCodec(signature_zoo)
    text = codec.encode_args((1, dt.date(2024, 1, 2), "x", Decimal("3")), {"d": 4, "k": U1})
    assert json.loads(text) == {"a": 1, "b": "2024-01-02", "c": "x", "rest": ["3"], "d": 4,
                                "extra": {"k": str(U1)}}

    def f(a: int, b: int = 0, *, c: int = 0) -> None: ...

    fc = FunctionCodec(f)
    assert fc.encode_args((1, 2), {}) == fc.encode_args((1,), {"b": 2}) \
        == fc.encode_args((), {"b": 2, "a": 1}) == '{"a":1,"b":2}'
    assert fc.encode_args((1,), {"c": 3}) == fc.encode_args((), {"c": 3, "a": 1})
    assert fc.decode_args('{"a":1,"c":3}') == ((1,), {"c": 3})
    # b left to its default: the parameters after it must go by name.
    assert fc.decode_args('{"a":1,"c":3}') == ((1,), {"c": 3})

    def g(a: int = 1, b: int = 2) -> None: ...

    assert FunctionCodec(g).decode_args(FunctionCodec(g).encode_args((), {"b": 5})) \
        == ((), {"b": 5})


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}),  # missing required
    ((1, dt.date(2024, 1, 1)), {}),  # missing keyword-only d
    ((1,), {"b": dt.date(2024, 1, 1), "d": 5}),  # positional-only passed by name
    ((1, dt.date(2024, 1, 1), "x"), {"c": "again", "d": 5}),  # multiple values for c
])
def test_wrong_calls_raise_the_bind_type_error(args: tuple[object, ...],
                                               kwargs: dict[str, object]) -> None:
    import inspect
    with pytest.raises(TypeError) as expected:
        inspect.signature(signature_zoo).bind(*args, **kwargs)
    with pytest.raises(TypeError) as got:
        FunctionCodec(signature_zoo).encode_args(args, kwargs)
    assert str(got.value) == str(expected.value)
    assert not isinstance(got.value, SerializationError)


def test_wrong_calls_without_var_params() -> None:
    def f(a: int, b: str = "") -> None: ...

    codec = FunctionCodec(f)
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((1, "x", 3), {}), ((1,), {"zz": 1}), ((), {"b": "x"})]
    for args, kwargs in calls:
        with pytest.raises(TypeError):
            codec.encode_args(args, kwargs)


def test_result_round_trip() -> None:
    codec = FunctionCodec(signature_zoo)
    value = {1: dt.date(2024, 1, 1)}
    assert codec.encode_result(value) == '[[1,"2024-01-01"]]'
    assert codec.decode_result(codec.encode_result(value)) == value

    async def agent(x: int) -> Order | None:
        return None

    fc = FunctionCodec(agent)
    assert fc.decode_result(fc.encode_result(ORDER)) == ORDER
    assert fc.decode_result(fc.encode_result(None)) is None
    with pytest.raises(SerializationError, match=r"cannot encode result of .*agent: expected"):
        fc.encode_result(5)
    with pytest.raises(SerializationError, match=r"cannot decode result of .*agent"):
        fc.decode_result('"x"')

    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    uc = FunctionCodec(untyped)
    assert uc.decode_result(uc.encode_result((1, dt.date(2024, 1, 1)))) \
        == (1, dt.date(2024, 1, 1))
    assert uc.decode_args(uc.encode_args(({1, 2},), {})) == (({1, 2},), {})


def test_decode_args_errors_name_the_parameter() -> None:
    codec = FunctionCodec(checkout)
    with pytest.raises(SerializationError, match="cannot decode argument 'order' of checkout"):
        codec.decode_args('{"order": 5}')
    with pytest.raises(SerializationError, match="has no parameter 'nope'"):
        codec.decode_args('{"order": {"items": []}, "nope": 1}')
    with pytest.raises(SerializationError, match="expected a JSON object"):
        codec.decode_args("[1]")
    with pytest.raises(SerializationError, match="argument 'express'"):
        codec.decode_args('{"order": {"items": []}, "express": "yes"}')


def test_star_args_errors_carry_the_index() -> None:
    def f(*xs: int, **kw: int) -> None: ...

    codec = FunctionCodec(f)
    with pytest.raises(SerializationError, match=r"argument 'xs' of .*f: \[1\]: expected int"):
        codec.encode_args((1, "two"), {})
    with pytest.raises(SerializationError, match=r"argument 'kw' of .*f: \['k'\]: expected int"):
        codec.encode_args((), {"k": "v"})
    assert codec.decode_args(codec.encode_args((1, 2), {"k": 3})) == ((1, 2), {"k": 3})


def _logged(fn: typing.Callable[..., T]) -> typing.Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> T:
        return fn(*args, **kwargs)
    return wrapper


@_logged
def wrapped(when: "dt.date", count: "int" = 1) -> "list[dt.date]":  # string hints on purpose
    return [when] * count


def test_functools_wraps_chain_uses_the_wrapped_hints() -> None:
    codec = FunctionCodec(wrapped)
    text = codec.encode_args((dt.date(2024, 1, 1),), {"count": 2})
    assert json.loads(text) == {"when": "2024-01-01", "count": 2}
    args, kwargs = codec.decode_args(text)
    assert args == (dt.date(2024, 1, 1), 2) and kwargs == {}
    assert codec.encode_result(wrapped(*args, **kwargs)) == '["2024-01-01","2024-01-01"]'


def test_unresolvable_hints_fall_back_to_any() -> None:
    def f(a: "DoesNotExist", b: int) -> "AlsoMissing":  # type: ignore[name-defined]  # noqa: F821
        return a

    codec = FunctionCodec(f)  # no crash
    text = codec.encode_args(((1, 2), 3), {})
    assert codec.decode_args(text) == (((1, 2), 3), {})
    with pytest.raises(SerializationError, match="argument 'b'"):
        codec.encode_args(((1, 2), "three"), {})  # b's hint still applies
    assert codec.decode_result(codec.encode_result(dt.date(2024, 1, 1))) == dt.date(2024, 1, 1)


class Service:
    def handle(self, item: Item, /, *, urgent: bool = False) -> Item:
        return item


def test_bound_methods_and_callable_objects() -> None:
    codec = FunctionCodec(Service().handle)
    text = codec.encode_args((Item("a", 1, Decimal(1)),), {"urgent": True})
    assert codec.decode_args(text) == ((Item("a", 1, Decimal(1)),), {"urgent": True})

    class Callable:
        def __call__(self, when: dt.time) -> dt.time:
            return when

    cc = FunctionCodec(Callable())
    assert cc.decode_args(cc.encode_args((dt.time(1),), {})) == ((dt.time(1),), {})
    pc = FunctionCodec(functools.partial(signature_zoo, 1))
    assert json.loads(pc.encode_args((dt.date(2024, 1, 1),), {"d": 1}))["b"] == "2024-01-01"


# --- forward references resolved late ----------------------------------------------------------


def uses_later(x: "DefinedLater") -> "list[DefinedLater]":
    return [x]


# Built the way a decorator builds it: while the module is still being imported.
LATER_CODEC = FunctionCodec(uses_later)


@dataclasses.dataclass
class Early:
    child: "DefinedLater | None" = None


EARLY_CODEC = codec_for(Early)  # compiled before DefinedLater exists


@dataclasses.dataclass
class DefinedLater:
    when: dt.date


def test_forward_references_resolve_on_first_use() -> None:
    value = DefinedLater(dt.date(2024, 1, 1))
    text = LATER_CODEC.encode_args((value,), {})
    assert json.loads(text) == {"x": {"when": "2024-01-01"}}  # typed, not self-describing
    assert LATER_CODEC.decode_args(text) == ((value,), {})
    assert LATER_CODEC.decode_result(LATER_CODEC.encode_result([value])) == [value]
    assert EARLY_CODEC.enc(Early(value)) == {"child": {"when": "2024-01-01"}}
    _roundtrip(Early(value), Early)


def test_class_as_function() -> None:
    codec = FunctionCodec(Item)
    text = codec.encode_args(("a", 1), {"price": Decimal("2.5")})
    assert json.loads(text) == {"sku": "a", "qty": 1, "price": "2.5"}
    args, kwargs = codec.decode_args(text)
    item = Item(*args, **kwargs)  # type: ignore[arg-type]
    assert codec.decode_result(codec.encode_result(item)) == item


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])).filter(
        lambda k: k != RESERVED), children, max_size=4),
    max_leaves=12))
def test_plain_json_is_stored_as_is(value: object) -> None:
    expected = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert dumps(value) == expected
    assert _same(loads(expected), value)


# --- caching -----------------------------------------------------------------------------------


def test_codecs_are_cached_and_unhashable_hints_still_work() -> None:
    assert codec_for(list[int]) is codec_for(list[int])
    assert codec_for(Item) is codec_for(Item)
    # Equal to typing, but the member order differs: distinct entries.
    assert codec_for(int | str).name != codec_for(str | int).name
    unhashable = Annotated[list[int], ["unhashable"]]
    _roundtrip([1, 2], unhashable)


def test_trivial_call_is_fast() -> None:
    import time

    def f(a: int, b: str) -> int:
        return a

    codec = FunctionCodec(f)
    rounds = 20_000
    start = time.perf_counter()
    for _ in range(rounds):
        codec.encode_args((1, "x"), {})
        codec.encode_result(1)
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 50e-6, per_call  # a few microseconds; generous for slow CI machines
