"""Operations: logs, traces, metrics, retention and export (empty until that capability lands).

Observers are handed to the engine; nothing below the engine imports this package.
"""
