"""The notifier, recovery and SLA HTTP APIs as the Incidents, SLA and Recovery pages use them: reads with the
console's admin token, changes on behalf of the signed-in operator (`X-Safeguard-Actor`, so the audit says
`admin:<name>`). A refusal or no answer is an `UpstreamError` with the status the console answers with."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request

from services.console.auth import Session
from services.console.flags_api import UpstreamError

__all__ = ["OpsApi", "UpstreamError", "ops_api"]


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:300] or response.reason_phrase
    if isinstance(detail, list):  # pydantic's [{"loc": [...], "msg": "..."}]
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)[:300]


class OpsApi:
    def __init__(self, client: httpx.AsyncClient, *, name: str, token: str | None, actor: str | None = None) -> None:
        self.name = name
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        if actor:
            self._headers["X-Safeguard-Actor"] = actor

    async def call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The JSON answer (text for a non-JSON one); None for a 404 when `missing_ok`."""
        try:
            r = await self._client.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"the {self.name} service did not answer ({type(exc).__name__})") from None
        if r.status_code == 404 and missing_ok:
            return None
        if r.status_code >= 400:
            status = 502 if r.status_code in (401, 403) else r.status_code  # our own token refused: not the user's
            raise UpstreamError(status, f"{self.name}: {_message(r)}")
        if not r.content:
            return None
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text


def ops_api(request: Request, name: str, session: Session | None = None) -> OpsApi:
    """`name`: notifier, recovery or sla (a client of request.app.state.backends)."""
    secret = request.app.state.sessions.auth.admin_token
    return OpsApi(getattr(request.app.state.backends, name), name=name,
                  token=secret.get_secret_value() if secret else None, actor=session.name if session else None)
