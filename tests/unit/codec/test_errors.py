"""The typed codec's errors: unencodable values, mismatches, unsafe tags, no pydantic."""

import dataclasses
import datetime as dt
import pathlib
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import (
    Any,
    Literal,
)

import pytest

from perdure.codec.functions import FunctionCodec, decode, dumps
from perdure.codec.types import RESERVED
from perdure.errors import SerializationError
from tests.unit.codec.samples import (
    U1,
    Cart,
    Cat,
    Color,
    Item,
    Movie,
    NotAData,
    Order,
    _roundtrip,
    checkout,
)

# --- errors ------------------------------------------------------------------------------------


def test_unencodable_argument_names_function_parameter_and_path() -> None:
    codec = FunctionCodec(checkout)
    with pytest.raises(SerializationError) as info:
        codec.encode_args((Cart([1, 2, NotAData()]),), {})
    message = str(info.value)
    assert message == ("cannot encode argument 'order' of checkout: field 'items'[2]: "
                       "object of type NotAData is not encodable")


def test_unencodable_values() -> None:
    for bad in (lambda: 1, object(), NotAData(), open, iter([]), {1: NotAData()}, [[NotAData()]]):
        with pytest.raises(SerializationError, match="is not encodable"):
            dumps(bad)
    with pytest.raises(SerializationError, match=r"\[0\]\[1\]\[2\]: object of type NotAData"):
        dumps([[0, [1, 2, NotAData()]]])
    with pytest.raises(SerializationError, match=r"\['k'\]"):
        dumps({"k": NotAData()})


def test_values_not_matching_hint_are_refused_at_encode_time() -> None:
    cases: list[tuple[object, object]] = [
        ("1", int), (1.5, int), (1, str), ([1], tuple[int, ...]), ((1,), list[int]),
        ("abc", Sequence[str]), (Cat("x"), Item), (3, Literal[1, 2]), (True, Literal[1]),
        (b"x", bytearray), (dt.date(2024, 1, 1), dt.datetime), ({1: 2}, dict[str, int]),
        ((1, 2), tuple[int]), ({"title": "x", "bogus": 1}, Movie), ([1.5], int | str),
    ]
    for value, hint in cases:
        with pytest.raises(SerializationError, match=r"expected|not declared"):
            dumps(value, hint)


def test_recursive_value_is_an_error_not_a_crash() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="cycle"):
        dumps(loop)


def test_local_class_under_any_is_refused() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match="inside a function"):
        dumps(Local(1))
    _roundtrip(Local(1), Local)  # by its hint it needs no import and works


@pytest.mark.parametrize("data", [
    1.5, "x", None, [1], {"a": 1},
])
def test_decoding_mismatching_data_raises(data: object) -> None:
    with pytest.raises(SerializationError):
        decode(data, Item)


def test_decoding_mismatches_name_the_path() -> None:
    with pytest.raises(SerializationError, match=r"field 'items'\[1\]\.qty: stored data 'x'"):
        decode({"id": str(U1), "placed": "2024-01-01T00:00:00",
                "items": [{"sku": "a", "qty": 1, "price": "1"},
                          {"sku": "b", "qty": "x", "price": "1"}]}, Order)
    for data, hint in [("nope", uuid.UUID), ("1.2.3", Decimal), ("2024-13-01", dt.date),
                       ("!!", bytes), ("purple", Color), (1.5, dt.timedelta), ([1, 2], tuple[int]),
                       ({RESERVED: "union", "m": "Elsewhere", "v": 1}, Item | Cat),
                       ({"iso": "2024-01-01T00:00:00", "zone": "No/Such_Zone"}, dt.datetime),
                       ([[[1], 2]], dict[Any, int]), (True, str), (1, bool), (2, None)]:
        with pytest.raises(SerializationError):
            decode(data, hint)


@pytest.mark.parametrize("tag", [
    {RESERVED: "dataclass", "t": "tests.unit.codec.samples:NotAData", "v": {}},
    {RESERVED: "dataclass", "t": "os:system", "v": {}},
    {RESERVED: "enum", "t": "builtins:dict", "v": {}},
    {RESERVED: "pydantic", "t": "tests.unit.codec.samples:Item", "v": {}},
    {RESERVED: "namedtuple", "t": "builtins:tuple", "v": {}},
    {RESERVED: "dataclass", "t": "no_such_module_xyz:Thing", "v": {}},
    {RESERVED: "dataclass", "t": "no-colon", "v": {}},
    {RESERVED: "dataclass", "t": f"{__name__}:Missing", "v": {}},
    {RESERVED: "bogus", "v": 1},
    {RESERVED: "tuple"},
])
def test_decoding_refuses_unsafe_or_malformed_tags(tag: dict[str, object]) -> None:
    with pytest.raises(SerializationError):
        decode(tag)


def test_refused_tag_message() -> None:
    with pytest.raises(SerializationError, match="not a dataclass class; refusing"):
        decode({RESERVED: "dataclass", "t": "tests.unit.codec.samples:NotAData", "v": {}})


def test_module_imports_without_pydantic(tmp_path: pathlib.Path) -> None:
    package = pathlib.Path(__file__).resolve().parents[3] / "perdure"
    script = textwrap.dedent(f"""
        import sys, types, dataclasses
        sys.modules["pydantic"] = None  # make `import pydantic` fail
        # A bare package object: only the codec and its own imports are loaded.
        pkg = types.ModuleType("perdure")
        pkg.__path__ = [{str(package)!r}]
        sys.modules["perdure"] = pkg
        from perdure.codec.functions import dumps, loads
        import datetime
        value = [1, (2,), datetime.date(2024, 1, 1)]
        assert loads(dumps(value)) == value
        tag = '{{"$perdure":"pydantic","t":"x:Y","v":{{}}}}'
        try:
            loads(tag)
        except Exception as e:
            assert type(e).__name__ == "SerializationError", e
        else:
            raise AssertionError("decoded a pydantic tag without pydantic")
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
