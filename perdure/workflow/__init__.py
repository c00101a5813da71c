"""What runs inside a workflow: the decorators, the run's context, steps (attempts, retries,
compensation) and the durable waits (timers, signals, children, gather).

Modules, from the bottom up: ``scope`` (which run or step this task is in), ``stops`` (why a
worker stops driving a run), ``definitions`` (``@workflow``, ``@step``), ``context`` (the
journal and sequence numbers of one run), then the operations built on it: ``steps``,
``values``, ``timers``, ``signals``, ``children`` and ``parallel``. This layer sees storage only
through :mod:`perdure.storage.port`; the engine drives it.
"""
