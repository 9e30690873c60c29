"""Who is calling: admin token, client (read/evaluate) keys, and the local stack's trusted loopback.

    auth = Authenticator(AuthSettings())
    @router.post("/api/x")
    async def change(actor: str = Depends(auth.require_admin)) -> ...   # 401 without the token
    @router.post("/api/system/status")
    async def runbook(actor: str = Depends(auth.require_admin_or_loopback)) -> ...

Rules:
- Admin: `Authorization: Bearer <SAFEGUARD_ADMIN_TOKEN>` (compared in constant time). The actor is
  `admin`, or `admin:<name>` when the caller adds `X-Safeguard-Actor: <name>` (for the audit log).
  With no admin token configured, nobody is admin (changes are refused, never open).
- Client keys (`SAFEGUARD_CLIENT_KEYS='{"demo-app": "key"}'`): `Authorization: Bearer <key>` or
  `X-API-Key: <key>`; actor `client:<name>`. While no client key is configured, reads are open
  (actor `anonymous`); the admin token always reads too.
- Trusted loopback (`SAFEGUARD_TRUST_LOOPBACK`, default: on only when `SAFEGUARD_ENV=local`): a caller
  whose address is loopback counts as an operator for the endpoints that opt in (the runbook's
  `curl` has no token). The address is the peer, or the right-most X-Forwarded-For entry when the
  peer is a trusted proxy (our HAProxy), so a forged X-Forwarded-For never earns trust.
"""

from __future__ import annotations

import hmac
import re
from typing import Literal

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ratelimit import _in_cidrs, client_address

__all__ = ["AuthSettings", "Authenticator"]

_ACTOR_NAME = re.compile(r"[^A-Za-z0-9_.@:-]")


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", extra="ignore")
    env: Literal["local", "test", "staging", "production"] = "production"
    admin_token: SecretStr | None = None
    client_keys: dict[str, SecretStr] = Field(default_factory=dict)
    trust_loopback: bool | None = Field(default=None, description="Default: True only when env is local.")
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    local_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Caller addresses that count as 'loopback' for the trusted-loopback rule. Only widen it "
                    "where the front door is not reachable from outside (e.g. docker compose's bridge gateway).")

    @property
    def loopback_trusted(self) -> bool:
        return self.trust_loopback if self.trust_loopback is not None else self.env == "local"


def _presented(request: HTTPConnection) -> str:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def _same(a: str, b: SecretStr | None) -> bool:
    return b is not None and hmac.compare_digest(a.encode(), b.get_secret_value().encode())


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class Authenticator:
    """FastAPI dependencies; each returns the actor name to write in the audit log."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._trusted_proxies = tuple(settings.trusted_proxies)
        self._local_networks = tuple(settings.local_networks)

    def _admin_actor(self, request: HTTPConnection) -> str | None:
        token = _presented(request)
        if not token or not _same(token, self.settings.admin_token):
            return None
        name = _ACTOR_NAME.sub("", request.headers.get("x-safeguard-actor", ""))[:64]
        return f"admin:{name}" if name else "admin"

    def _client_actor(self, request: HTTPConnection) -> str | None:
        token = _presented(request)
        found = None
        for name, key in self.settings.client_keys.items():  # no early exit: same time for every key
            if token and _same(token, key):
                found = f"client:{name}"
        return found

    def is_loopback(self, request: HTTPConnection) -> bool:
        addr = client_address(request, self._trusted_proxies)
        return _in_cidrs(addr, self._local_networks)

    async def require_admin(self, request: Request) -> str:
        actor = self._admin_actor(request)
        if actor is None:
            raise _unauthorized("admin token required (Authorization: Bearer <SAFEGUARD_ADMIN_TOKEN>)")
        return actor

    async def require_admin_or_loopback(self, request: Request) -> str:
        actor = self._admin_actor(request)
        if actor is not None:
            return actor
        if self.settings.loopback_trusted and self.is_loopback(request):
            return f"loopback:{client_address(request, self._trusted_proxies)}"
        raise _unauthorized("admin token required (trusted loopback is off or the caller is not local)")

    def verified_identity(self, conn: HTTPConnection) -> str | None:
        """`admin` or `client:<name>` when the presented token matches one, else None: the rate-limit key
        (the admin's self-chosen X-Safeguard-Actor name is left out, so it cannot pick a fresh bucket)."""
        token = _presented(conn)
        if token and _same(token, self.settings.admin_token):
            return "admin"
        return self._client_actor(conn)

    def reader_actor(self, conn: HTTPConnection) -> str | None:
        """The reader's actor name, or None when a client key is required and missing (for plain ASGI code)."""
        actor = self._admin_actor(conn) or self._client_actor(conn)
        if actor is not None:
            return actor
        return None if self.settings.client_keys else "anonymous"

    async def require_reader(self, request: Request) -> str:
        actor = self.reader_actor(request)
        if actor is None:
            raise _unauthorized("client key required (Authorization: Bearer <key> or X-API-Key)")
        return actor
