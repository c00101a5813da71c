"""Pydantic v2 models, without importing pydantic until a stored model needs it: recognising a
model class, dumping a model as JSON data and validating JSON data back into a model.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from perdure.codec.types.errors import PathError


def _pydantic_base() -> type | None:
    # No import: if pydantic was never imported, no value can be one of its models.
    module = sys.modules.get("pydantic")
    base = getattr(module, "BaseModel", None) if module is not None else None
    return base if isinstance(base, type) else None


def is_pydantic_class(cls: type) -> bool:
    """Whether ``cls`` is a pydantic model class (never imports pydantic)."""
    base = _pydantic_base()
    return base is not None and issubclass(cls, base)


def pydantic_dump(v: Any) -> object:
    """The JSON data of model ``v``, by alias."""
    try:
        return v.model_dump(mode="json", by_alias=True)
    except Exception as e:
        raise PathError(f"pydantic could not dump {type(v).__qualname__}: {e}") from e


def pydantic_load(cls: Any, d: object) -> object:
    """Model ``cls`` validated from JSON data ``d``."""
    try:
        if cls.model_config.get("strict"):
            # Strict models refuse a datetime given as a string in Python mode; the data was
            # JSON, so validate it in JSON mode.
            return cls.model_validate_json(json.dumps(d))
        return cls.model_validate(d)
    except Exception as e:
        raise PathError(f"pydantic rejected the stored {cls.__qualname__}: {e}") from e


def is_pydantic_class_importing(cls: type) -> bool:
    """:func:`is_pydantic_class`, importing pydantic first: for a class named by stored data."""
    try:
        importlib.import_module("pydantic")
    except ImportError:
        return False
    return is_pydantic_class(cls)
