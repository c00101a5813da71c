"""Operations: lifecycle logs, OpenTelemetry traces, Prometheus metrics and health.

The engine builds an :class:`~perdure.observe.observer.Observer` from its ``tracing`` and
``metrics`` options and hands it to its worker and runner; nothing below the engine imports
this package (the workflow layer reports through the ``RunHooks`` the engine passes in).
``traces`` and ``metrics`` import their optional libraries, so they are imported only when
their option is on; this package's own names need nothing but the standard library.
"""

from perdure.observe.health import Readiness
from perdure.observe.logs import JsonFormatter

__all__ = ["JsonFormatter", "Readiness"]
