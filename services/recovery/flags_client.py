"""Outbound edge: the flags API's kill switch for new features."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import SecretStr

from shared.tracing_links import http_headers

__all__ = ["HttpFlagsClient"]

_tracer = trace.get_tracer(__name__)


class HttpFlagsClient:
    """`POST {flags_url}/api/flags/_kill-new` with the admin token, as actor `recovery`, in a CLIENT span whose
    `traceparent` goes along (the kill and the FlagChanged it publishes continue the incident's trace)."""

    def __init__(self, client: httpx.AsyncClient, *, flags_url: str, token: SecretStr | None) -> None:
        self.client = client
        self.url = flags_url.rstrip("/") + "/api/flags/_kill-new"
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
