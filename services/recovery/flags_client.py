"""Outbound edge: the flags API's kill switch for new features."""

from __future__ import annotations

from datetime import datetime

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, ConfigDict, SecretStr

from shared.tracing_links import http_headers


class Change(BaseModel):
    """One entry of a flag's audit log in the flags service (the fields recovery reads)."""

    model_config = ConfigDict(extra="ignore")
    actor: str
    action: str
    at: datetime

__all__ = ["HttpFlagsClient", "Change"]

_tracer = trace.get_tracer(__name__)


class HttpFlagsClient:
    """`POST {flags_url}/api/flags/_kill-new` with the admin token, as actor `recovery`, in a CLIENT span whose
    `traceparent` goes along (the kill and the FlagChanged it publishes continue the incident's trace)."""

    def __init__(self, client: httpx.AsyncClient, *, flags_url: str, token: SecretStr | None) -> None:
        self.client = client
        self.base = flags_url.rstrip("/")
        self.url = self.base + "/api/flags/_kill-new"
        self.token = token

    async def kill_new(self, *, reason: str) -> list[str]:
        if self.token is None:
            raise RuntimeError("SAFEGUARD_ADMIN_TOKEN is not set: cannot call the flags kill switch")
        with _tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST", "url.full": self.url}) as span:
            resp = await self.client.post(self.url, json={"reason": reason[:500]}, headers={
                "Authorization": f"Bearer {self.token.get_secret_value()}", "X-Safeguard-Actor": "recovery",
                **http_headers()})
            span.set_attribute("http.response.status_code", resp.status_code)
            if resp.status_code != 200:
                span.set_status(StatusCode.ERROR)
                raise RuntimeError(f"flags API answered {resp.status_code}: {resp.text[:200]}")
        return [str(k) for k in resp.json().get("killed", [])]

    async def newest_change(self, key: str) -> Change | None:
        """The flag's newest audit entry (who changed it last, how, when); None when it has none (deleted).
        Raises `httpx.HTTPError` / `RuntimeError` when the flags service does not answer."""
        if self.token is None:
            raise RuntimeError("SAFEGUARD_ADMIN_TOKEN is not set: cannot read the flags audit log")
        resp = await self.client.get(f"{self.base}/api/flags/{key}/audit", params={"limit": 1},
                                     headers={"Authorization": f"Bearer {self.token.get_secret_value()}"})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RuntimeError(f"flags API answered {resp.status_code}: {resp.text[:200]}")
        entries = resp.json()
        return Change.model_validate(entries[0]) if entries else None
