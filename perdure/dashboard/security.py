"""Who may act: the token, the signed-in session cookie and the CSRF token of every action.

Signing in with the token sets a session cookie ``NONCE.MAC`` (HttpOnly, SameSite=Strict)
where MAC is an HMAC of a random nonce under the token: the token itself is never stored in
the browser, and changing the token signs every session out. Every action form carries a
CSRF token derived from the session's nonce (another HMAC), and a request whose ``Origin``
names another site is refused. Comparisons are constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from perdure.errors import InvalidConfiguration

__all__ = ["COOKIE", "MIN_TOKEN", "Guard"]

COOKIE = "perdure_session"
#: the shortest token accepted: a guessable token is no protection
MIN_TOKEN = 16


class Guard:
    """Checks tokens, sessions and CSRF tokens for one dashboard (read-only when ``token``
    is None)."""

    def __init__(self, token: str | None) -> None:
        if token is not None and (not isinstance(token, str) or len(token) < MIN_TOKEN):
            raise InvalidConfiguration(
                f"the dashboard token must be a string of at least {MIN_TOKEN} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')")
        self._key = None if token is None else token.encode()

    @property
    def read_only(self) -> bool:
        """No token was configured: nobody can act."""
        return self._key is None

    def _mac(self, purpose: str, nonce: str) -> str:
        assert self._key is not None
        return hmac.new(self._key, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the token (constant time)."""
        if self._key is None:
            return False
        return hmac.compare_digest(given.encode(), self._key)

    def new_session(self) -> str:
        """A session cookie value for someone who just gave the right token."""
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._mac('session', nonce)}"

    def session_nonce(self, cookie: str | None) -> str | None:
        """The nonce of a valid session cookie, else None."""
        if self._key is None or not cookie or "." not in cookie:
            return None
        nonce, _, mac = cookie.partition(".")
        return (nonce if hmac.compare_digest(mac.encode(), self._mac("session", nonce).encode())
                else None)

    def csrf_for(self, nonce: str) -> str:
        """The CSRF token of the session with ``nonce``."""
        return self._mac("csrf", nonce)

    def check_csrf(self, nonce: str, given: str) -> bool:
        """Whether ``given`` is the session's CSRF token (constant time)."""
        return hmac.compare_digest(given.encode(), self.csrf_for(nonce).encode())
