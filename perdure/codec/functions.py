"""The typed codec: workflow and step arguments and results as strict JSON text, no pickle.

The encoding is chosen from type hints, so values come back with their types after a restart:
a ``datetime`` parameter comes back a ``datetime``, a dataclass comes back that dataclass.

* :func:`encode` / :func:`decode` convert between a value and JSON data by a hint;
  :func:`dumps` / :func:`loads` do the same to and from JSON text.
* :class:`FunctionCodec` does it for a function's call arguments and return value, by the
  function's own hints. The engine keeps one per workflow and step.

Supported by hint: ``None``, ``bool``, ``int``, ``float`` (NaN and infinities too), ``str``,
``bytes``, ``bytearray``, ``datetime`` (naive, fixed offset, ``ZoneInfo``), ``date``, ``time``,
``timedelta``, ``UUID``, ``Decimal``, ``Enum`` members, ``pathlib`` paths, dataclasses, named
tuples, ``TypedDict``, pydantic v2 models, ``list``/``tuple``/``dict``/``set``/``frozenset`` and
their ``collections.abc`` counterparts (``dict`` keys of any supported type), ``Optional``,
``Union``, ``Literal``, ``Annotated`` and ``NewType``.

Under ``Any``, ``object`` or no hint, values describe themselves: JSON scalars, lists and
str-keyed dicts as they are, everything else as ``{"$perdure": "<tag>", "v": ...}``; dataclass,
named tuple, pydantic and enum values name their class as ``module:qualname``, and decoding
imports it and checks it is such a class before using it. Anything else is a
:class:`~perdure.errors.SerializationError` when encoding, which names the parameter and the path
to the offending part. See :mod:`perdure.codec.types` for the encodings themselves.
"""

from __future__ import annotations

import functools
import inspect
import json
import json.encoder
import typing
from collections.abc import Callable
from typing import Any

from perdure.codec.limits import check_size, human_size, payload_size, size_over, too_large
from perdure.codec.types import Codec, PathError, codec_for, resolve_hints_status
from perdure.errors import SerializationError

__all__ = ["FunctionCodec", "decode", "dumps", "encode", "loads"]


def _text_encoder(ensure_ascii: bool) -> Callable[[object], str]:
    """Compact, strict JSON text of JSON data.

    ``JSONEncoder.encode`` rebuilds its C encoder on every call, which is most of the cost of a
    small document; every step encodes its arguments and result, so the C encoder is built once
    here. Where it does not exist (not CPython), the plain encoder does the same job.
    """
    # check_circular=False: codec output is always freshly built, acyclic data.
    plain = json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=False, separators=(",", ":"),
                             check_circular=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain.encode
    quote = json.encoder.encode_basestring_ascii if ensure_ascii \
        else json.encoder.encode_basestring
    # (markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys, allow_nan)
    chunks = make(None, plain.default, quote, None, ":", ",", False, False, False)
    return lambda data: "".join(chunks(data, 0))


_TEXT = _text_encoder(ensure_ascii=False)
_ASCII_TEXT = _text_encoder(ensure_ascii=True)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not strict JSON")


_PARSER = json.JSONDecoder(parse_constant=_reject_constant)


def _cause(err: Exception) -> BaseException | None:
    """What the SerializationError made from ``err`` should name as its cause."""
    if isinstance(err, SerializationError):  # a PathError's own cause, such as a ValueError
        return err.__cause__
    return None if isinstance(err, RecursionError) else err


def _convert(action: str, err: Exception) -> SerializationError:
    """The SerializationError to raise for ``err``, a failure while doing ``action``."""
    if isinstance(err, PathError):
        where = err.where()
        return SerializationError(f"{action}: {where}: {err.reason}" if where
                                  else f"{action}: {err.reason}")
    if isinstance(err, SerializationError):
        return err
    if isinstance(err, RecursionError):
        return SerializationError(
            f"{action}: the value is nested too deeply or contains a reference cycle")
    # A user __eq__, property or validator failed mid-way: still never a half-written output.
    return SerializationError(f"{action}: {type(err).__name__}: {err}")


def _text(data: object, action: str) -> str:
    try:
        text = _TEXT(data)
    except (ValueError, TypeError) as e:  # only reachable through a pydantic dump
        raise SerializationError(f"{action}: not strict JSON: {e}") from e
    except RecursionError:
        raise SerializationError(f"{action}: the value is nested too deeply") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (a file name decoded with surrogateescape, say) cannot be stored
            # as UTF-8; \u escapes keep the text valid and json.loads restores it exactly.
            text = _ASCII_TEXT(data)
    return text


def _parse(text: str, action: str) -> object:
    if not isinstance(text, str):
        raise SerializationError(f"{action}: expected JSON text, got {type(text).__qualname__}")
    try:
        return _PARSER.decode(text)
    except RecursionError:
        raise SerializationError(f"{action}: the JSON text is nested too deeply") from None
    except ValueError as e:
        raise SerializationError(f"{action}: invalid JSON text: {e}") from e


def encode(value: object, hint: object = Any) -> object:
    """Encode ``value`` as JSON data (dicts, lists, strings, numbers, booleans, None) by ``hint``.

    Raises :class:`~perdure.errors.SerializationError` if the value cannot be encoded or does not
    match the hint.
    """
    try:
        return codec_for(hint).enc(value)
    except Exception as e:
        raise _convert("cannot encode value", e) from _cause(e)


def decode(data: object, hint: object = Any) -> object:
    """Decode JSON data written by :func:`encode` with the same ``hint`` back into a value.

    Raises :class:`~perdure.errors.SerializationError` if the data does not match the hint.
    """
    try:
        return codec_for(hint).dec(data)
    except Exception as e:
        raise _convert("cannot decode value", e) from _cause(e)


def dumps(value: object, hint: object = Any) -> str:
    """Encode ``value`` by ``hint`` as compact, strict JSON text."""
    return _text(encode(value, hint), "cannot encode value")


def loads(text: str, hint: object = Any) -> object:
    """Decode JSON text written by :func:`dumps` with the same ``hint``."""
    return decode(_parse(text, "cannot decode value"), hint)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class _Param:
    __slots__ = ("dec", "enc", "kind", "name")

    def __init__(self, name: str, kind: inspect._ParameterKind, codec: Codec) -> None:
        self.name = name
        self.kind = kind
        self.enc = codec.enc
        self.dec = codec.dec


def function_hints(fn: Callable[..., object]) -> tuple[dict[str, object], bool]:
    """The resolved type hints of ``fn`` and whether all of them resolved, looking through
    bound methods, ``functools.partial`` and ``functools.wraps`` chains (a wrapper's own globals
    would resolve string hints wrongly).
    """
    target: Any = fn
    while True:
        if inspect.ismethod(target):
            target = target.__func__
        elif isinstance(target, functools.partial):
            target = target.func
        elif hasattr(target, "__wrapped__"):
            target = inspect.unwrap(target)
        else:
            break
    if isinstance(target, type):  # a class called for its instances
        init: object = typing.cast(Any, target).__init__
        hints, complete = resolve_hints_status(init)
        return {**hints, "return": target}, complete
    if not (inspect.isfunction(target) or inspect.isbuiltin(target)) and callable(target):
        target = type(target).__call__  # a callable object: its __call__ holds the hints
    return resolve_hints_status(target)


_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


class _Plan:
    """Everything a FunctionCodec precomputes from the signature and the hints."""

    __slots__ = ("by_name", "keyword", "keyword_names", "params", "position", "positional",
                 "required_keyword", "required_positional", "result")

    def __init__(self, signature: inspect.Signature, hints: dict[str, object]) -> None:
        self.params = [_Param(p.name, p.kind, codec_for(hints.get(p.name, Any)))
                       for p in signature.parameters.values()]
        self.by_name = {p.name: p for p in self.params}
        self.result = codec_for(hints.get("return", Any))
        # For _fast_bind, which skips Signature.bind (slow, and on the hot path of every step)
        # for plain call shapes; anything unusual goes through bind instead.
        defaults = {p.name for p in signature.parameters.values()
                    if p.default is not inspect.Parameter.empty}
        self.positional = [p for p in self.params if p.kind in _POSITIONAL]
        self.position = {p.name: i for i, p in enumerate(self.positional)}
        self.keyword = [p for p in self.params
                        if p.kind in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY)]
        self.keyword_names = frozenset(p.name for p in self.keyword)
        self.required_positional = [(i, p) for i, p in enumerate(self.positional)
                                    if p.name not in defaults]
        self.required_keyword = [p.name for p in self.params
                                 if p.kind is _KEYWORD_ONLY and p.name not in defaults]

    def fast_bind(self, args: tuple[object, ...], kwargs: dict[str, object]
                  ) -> list[tuple[_Param, object]] | None:
        """Bind a call the way ``Signature.bind`` would, or None if it is not a plain call."""
        n = len(args)
        if n > len(self.positional):
            return None
        for i, p in self.required_positional:
            if i >= n and (p.kind is _POSITIONAL_ONLY or p.name not in kwargs):
                return None
        for name in self.required_keyword:
            if name not in kwargs:
                return None
        pairs = list(zip(self.positional, args, strict=False))
        if kwargs:
            position, names = self.position, self.keyword_names
            for name in kwargs:
                if name not in names or position.get(name, n) < n:
                    return None
            pairs += [(p, kwargs[p.name]) for p in self.keyword if p.name in kwargs]
        return pairs


class FunctionCodec:
    """Encodes a function's call arguments and its return value by its type hints.

    Arguments are stored as a JSON object ``{parameter: encoded value}`` of the arguments the
    call actually bound, in signature order (so ``f(1, b=2)`` and ``f(1, 2)`` store the same
    text); a ``*args`` parameter holds a list and a ``**kwargs`` parameter an object, each
    element encoded by the parameter's hint. Defaults are not stored: they apply when the
    function is called again.

    Hints that cannot be resolved count as ``Any``. Since a decorator builds its codec while the
    module is still being imported, a forward reference to a class defined further down is
    retried once, on first use.
    """

    __slots__ = ("_name", "_plan", "_resolved", "_signature", "fn")

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn = fn
        self._name: str = getattr(fn, "__qualname__", None) or repr(fn)
        self._signature = inspect.signature(fn)
        hints, self._resolved = function_hints(fn)
        self._plan = _Plan(self._signature, hints)

    def __repr__(self) -> str:
        return f"<FunctionCodec of {self._name}>"

    def _replan(self) -> _Plan:
        """Resolve the hints again, once: the names they refer to may exist by now."""
        plan = _Plan(self._signature, function_hints(self.fn)[0])
        self._plan, self._resolved = plan, True
        return plan

    # -- arguments ------------------------------------------------------------------------------

    def encode_args(self, args: tuple[object, ...], kwargs: dict[str, object], *,
                    limit: int | None = None) -> str:
        """The JSON text of a call ``fn(*args, **kwargs)``.

        Raises ``TypeError`` (from ``Signature.bind``) if the call does not fit the signature,
        and :class:`~perdure.errors.SerializationError` naming the parameter and the path to the
        offending part if an argument cannot be encoded; with ``limit`` (bytes),
        :class:`~perdure.errors.PayloadTooLarge` naming the largest argument if the text is
        longer.
        """
        plan = self._plan if self._resolved else self._replan()
        pairs = plan.fast_bind(args, kwargs)
        if pairs is None:
            bound = self._signature.bind(*args, **kwargs)  # a wrong call is a plain TypeError
            pairs = [(plan.by_name[name], value) for name, value in bound.arguments.items()]
        out: dict[str, object] = {}
        param: _Param | None = None
        try:
            for param, value in pairs:
                kind, enc = param.kind, param.enc
                if kind is _VAR_POSITIONAL:
                    out[param.name] = [_at(f"[{i}]", enc, x)
                                       for i, x in enumerate(typing.cast(tuple[Any], value))]
                elif kind is _VAR_KEYWORD:
                    out[param.name] = {k: _at(f"[{k!r}]", enc, x)
                                       for k, x in typing.cast(dict[str, Any], value).items()}
                else:
                    out[param.name] = enc(value)
        except Exception as e:
            name = param.name if param is not None else "?"
            raise _convert(f"cannot encode argument {name!r} of {self._name}", e) \
                from _cause(e)
        text = _text(out, f"cannot encode the arguments of {self._name}")
        size = None if limit is None else size_over(text, limit)
        if size is not None:
            raise self._args_too_large(out, size, limit)  # type: ignore[arg-type]
        return text

    def _args_too_large(self, out: dict[str, object], size: int, limit: int) -> Exception:
        """The error naming the largest argument (measured again only on this failure path)."""
        sizes = {name: payload_size(_text(data, "")) for name, data in out.items()}
        largest = max(sizes, key=lambda name: sizes[name])
        if len(sizes) == 1:
            return too_large(f"argument {largest!r} of {self._name}", size, limit)
        return too_large(f"the arguments of {self._name}", size, limit,
                         f" (the largest, {largest!r}, is {human_size(sizes[largest])})")

    def decode_args(self, text: str) -> tuple[tuple[object, ...], dict[str, object]]:
        """The ``(args, kwargs)`` stored by :meth:`encode_args`, ready for ``fn(*args, **kwargs)``.

        Positional-only parameters (and any parameter before ``*args``) go into ``args``.
        """
        plan = self._plan if self._resolved else self._replan()
        action = f"cannot decode the arguments of {self._name}"
        data = _parse(text, action)
        if type(data) is not dict:
            raise SerializationError(f"{action}: expected a JSON object, got {_kind(data)}")
        unknown = data.keys() - plan.by_name.keys()
        if unknown:
            raise SerializationError(
                f"{action}: {self._name} has no parameter {sorted(unknown)[0]!r}")
        args: list[object] = []
        kwargs: dict[str, object] = {}
        gap = False  # a positional parameter was left to its default: later ones go by name
        param: _Param | None = None
        try:
            for param in plan.params:
                kind, dec = param.kind, param.dec
                if param.name not in data:
                    gap = gap or kind in _POSITIONAL
                    continue
                stored = data[param.name]
                if kind is _VAR_POSITIONAL:
                    if type(stored) is not list or gap:
                        raise PathError("expected a JSON array of positional arguments")
                    args += [_at(f"[{i}]", dec, x) for i, x in enumerate(stored)]
                elif kind is _VAR_KEYWORD:
                    if type(stored) is not dict:
                        raise PathError("expected a JSON object of keyword arguments")
                    kwargs.update({k: _at(f"[{k!r}]", dec, x) for k, x in stored.items()})
                elif kind is _KEYWORD_ONLY or (gap and kind is _POSITIONAL_OR_KEYWORD):
                    kwargs[param.name] = dec(stored)
                elif gap:
                    raise PathError("an earlier positional-only parameter has no stored value")
                else:
                    args.append(dec(stored))
        except Exception as e:
            name = param.name if param is not None else "?"
            raise _convert(f"cannot decode argument {name!r} of {self._name}", e) \
                from _cause(e)
        return tuple(args), kwargs

    # -- result ---------------------------------------------------------------------------------

    def encode_result(self, value: object, *, limit: int | None = None) -> str:
        """The JSON text of a return value, encoded by the return hint; with ``limit`` (bytes),
        :class:`~perdure.errors.PayloadTooLarge` if the text is longer."""
        plan = self._plan if self._resolved else self._replan()
        try:
            data = plan.result.enc(value)
        except Exception as e:
            raise _convert(f"cannot encode result of {self._name}", e) from _cause(e)
        text = _text(data, f"cannot encode result of {self._name}")
        check_size(text, limit, f"the result of {self._name}")
        return text

    def decode_result(self, text: str) -> object:
        """The return value stored by :meth:`encode_result`."""
        plan = self._plan if self._resolved else self._replan()
        action = f"cannot decode result of {self._name}"
        data = _parse(text, action)
        try:
            return plan.result.dec(data)
        except Exception as e:
            raise _convert(action, e) from _cause(e)


def _at(segment: str, fn: Callable[[Any], object], value: object) -> object:
    """``fn(value)``, adding ``segment`` to the path of a failure."""
    try:
        return fn(value)
    except PathError as e:
        e.path.append(segment)
        raise


def _kind(data: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(data), "null")
