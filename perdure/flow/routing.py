"""Routing: a worker's ``labels`` and a run's ``requires`` selector, as tokens the claim compares.

A selector ``{"gpu": "*", "region": "eu"}`` needs a worker that has a ``gpu`` label (any
value) and the label ``region`` = ``eu``. Both sides become sets of tokens, so the claim
statement decides with one containment test (``requires <@ caps``): a requirement is the token
``KEY`` (has the label) or ``KEY<US>VALUE`` (has it with that value, US the unit separator), and
a worker's capabilities are both tokens for each of its labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from perdure import validate
from perdure.errors import InvalidConfiguration

__all__ = ["ANY", "capabilities", "describe", "labels_from", "labels_of", "requirements",
           "selector"]

#: the selector value that means "has this label, with any value"
ANY = "*"
_SEP = "\x1f"


def _label(value: object, what: str) -> str:
    text = validate.name(value, what, max_length=200)
    if _SEP in text:
        raise InvalidConfiguration(f"{what} must not contain the unit separator (\\x1f): "
                                   f"{text!r}")
    return text


def selector(value: object, what: str = "requires") -> dict[str, str] | None:
    """A ``requires`` selector checked: a mapping of label name to a value or ``"*"`` (None
    and an empty mapping: no requirement)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidConfiguration(f"{what} must be a dict of label name to value (or '*'), "
                                   f"not {type(value).__name__}")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise InvalidConfiguration(f"{what} must map str to str; got {key!r}: {val!r}")
        out[_label(key, f"a label name in {what}")] = _label(val, f"the value of label "
                                                                  f"{key!r} in {what}")
    return out or None


def labels_of(value: object) -> dict[str, str]:
    """A worker's ``labels`` checked: a mapping of label name to value."""
    return selector(value, "labels") or {}


def requirements(sel: Mapping[str, str] | None) -> list[str] | None:
    """The tokens a run's selector requires (None: none)."""
    if not sel:
        return None
    return sorted(k if v == ANY else f"{k}{_SEP}{v}" for k, v in sel.items())


def capabilities(labels: Mapping[str, str]) -> list[str]:
    """The tokens a worker with ``labels`` offers."""
    return sorted({t for k, v in labels.items() for t in (k, f"{k}{_SEP}{v}")})


def labels_from(tokens: Sequence[str]) -> dict[str, str]:
    """A worker's labels back from the tokens it offers (see :func:`capabilities`)."""
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition(_SEP)
        if sep:
            out[key] = value
    return dict(sorted(out.items()))


def describe(tokens: Sequence[str] | None) -> dict[str, str] | None:
    """The selector back from its tokens (for ``RunInfo`` and the CLI)."""
    if not tokens:
        return None
    out: dict[str, str] = {}
    for token in tokens:
        key, _, value = token.partition(_SEP)
        out[key] = value if value else ANY
    return out
