"""Outbound edge: the flags API's kill switch for new features."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

__all__ = ["HttpFlagsClient"]


class HttpFlagsClient:
    """`POST {flags_url}/api/flags/_kill-new` with the admin token, as actor `recovery`."""

    def __init__(self, client: httpx.AsyncClient, *, flags_url: str, token: SecretStr | None) -> None:
        self.client = client
        self.url = flags_url.rstrip("/") + "/api/flags/_kill-new"
        self.token = token

    async def kill_new(self, *, reason: str) -> list[str]:
        if self.token is None:
            raise RuntimeError("SAFEGUARD_ADMIN_TOKEN is not set: cannot call the flags kill switch")
        resp = await self.client.post(self.url, json={"reason": reason[:500]}, headers={
            "Authorization": f"Bearer {self.token.get_secret_value()}", "X-Safeguard-Actor": "recovery"})
        if resp.status_code != 200:
            raise RuntimeError(f"flags API answered {resp.status_code}: {resp.text[:200]}")
        return [str(k) for k in resp.json().get("killed", [])]
