"""Payload encoding: the typed JSON codec chosen from type hints (``functions`` for values and
call signatures, ``types`` for the compiler behind it)."""
