"""The web dashboard: runs, their journals as timelines, workers and actions, in a browser.

``perdure.dashboard.app(engine)`` returns an ASGI application over an open engine (mount it
in a FastAPI or Starlette app); ``perdure dashboard --db URL`` serves one on 127.0.0.1.
Pages are rendered on the server (Jinja2, autoescaped) with charts as inline SVG; a small
shipped script only adds auto-refresh and copy buttons. Without a ``token`` it is read-only;
with one, signing in with it unlocks the actions (signal, cancel, resume, fork, retry), each
confirmed and protected against cross-site requests. Needs the ``perdure[dashboard]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perdure.engine.engine import Engine

__all__ = ["app"]


def app(engine: Engine, token: str | None = None, *, refresh: float = 5.0) -> Any:
    """An ASGI application showing ``engine``'s database (the engine must be open while it
    serves; a client engine, ``worker=False``, is enough).

    ``token``: the secret that unlocks the actions (at least 16 characters); None makes the
    dashboard read-only. ``refresh``: seconds between the pages' auto-refreshes (0: off).
    Raises ``InvalidConfiguration`` for a short token and ``ImportError``
    naming the extra when Starlette or Jinja2 is missing.
    """
    from perdure.dashboard.server import build

    return build(engine, token, refresh=refresh)
