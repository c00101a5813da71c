"""Type hints: resolving annotations (tolerating names that do not exist yet) and the small
rewrites the compiler applies to hints (display names, union member keys, stripping
``Annotated``, substituting a generic class's type arguments).
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Iterable
from typing import Any


def hint_name(hint: object) -> str:
    """How a hint is named in codec names and error messages."""
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


def member_key(hint: object) -> str:
    """A member's name in a tagged union: stable across processes and independent of order."""
    if isinstance(hint, type):
        module = hint.__module__
        return hint.__qualname__ if module == "builtins" else f"{module}.{hint.__qualname__}"
    return repr(hint)


def strip_annotated(hint: object) -> object:
    """``hint`` without any ``Annotated`` wrappers."""
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def substitute(hint: object, mapping: dict[object, object]) -> object:
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
