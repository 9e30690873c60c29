"""Sign-in with the admin token, a signed cookie session, and a CSRF token on every form.

The cookie never holds the token: it holds who signed in (the name they gave, written to every
audit entry as `admin:<name>` through `X-Safeguard-Actor`), when it expires and the session's CSRF
token, signed with a key derived from the admin token (rotating the token signs everyone out).
Without a session the console is read-only, and only in local mode (`SAFEGUARD_ENV=local`);
elsewhere every page needs a session."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.auth import AuthSettings

__all__ = ["Session", "SessionKeeper", "COOKIE", "viewer", "operator", "checked_operator"]

COOKIE = "sg_console"
_NAME = re.compile(r"[^A-Za-z0-9_.@-]")


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    csrf: str

    @property
    def actor(self) -> str:
        return f"admin:{self.name}"


class SessionKeeper:
    def __init__(self, auth: AuthSettings, *, max_age_s: int = 8 * 3600) -> None:
        self.auth = auth
        self.max_age_s = max_age_s
        token = auth.admin_token.get_secret_value() if auth.admin_token else ""
        key = hashlib.sha256(b"safeguard-console-session\0" + token.encode()).hexdigest()
        self._signer = URLSafeTimedSerializer(key, salt="console-session")

    @property
    def enabled(self) -> bool:
        return self.auth.admin_token is not None

    def sign_in(self, *, token: str, name: str) -> tuple[Session, str] | None:
        """A new session and its cookie value when `token` is the admin token, else None."""
        admin = self.auth.admin_token
        if admin is None or not hmac.compare_digest(token.encode(), admin.get_secret_value().encode()):
            return None
        session = Session(name=_NAME.sub("", name)[:64] or "operator", csrf=secrets.token_urlsafe(24))
        return session, self._signer.dumps({"n": session.name, "c": session.csrf})

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or not self.enabled:
            return None
        try:
            data = self._signer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        return Session(name=str(data["n"]), csrf=str(data["c"]))

    @property
    def anonymous_can_read(self) -> bool:
        return self.auth.env == "local"


def _keeper(request: Request) -> SessionKeeper:
    keeper: SessionKeeper = request.app.state.sessions
    return keeper


async def viewer(request: Request) -> Session | None:
    """The signed-in operator, or None for an anonymous reader (local mode only; else 401 to sign in)."""
    keeper = _keeper(request)
    session = keeper.read(request.cookies.get(COOKIE))
    if session is None and not keeper.anonymous_can_read:
        raise HTTPException(status_code=401, detail="sign in to use the console (/console/login)")
    return session


async def operator(request: Request) -> Session:
    """A signed-in operator (changes need one)."""
    session = _keeper(request).read(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(status_code=401, detail="sign in with the admin token to change anything (/console/login)")
    return session


async def checked_operator(request: Request, session: Annotated[Session, Depends(operator)],
                           csrf: Annotated[str, Form()] = "") -> Session:
    """A signed-in operator whose request carries the session's CSRF token: the form field `csrf`, or the
    `X-CSRF-Token` header (base.html makes htmx send it with every request)."""
    csrf = csrf or request.headers.get("x-csrf-token", "")
    if not csrf or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise HTTPException(status_code=403, detail="the form's CSRF token is missing or stale: reload the page")
    return session
