"""The few flag operations a deploy needs, through the front door with the admin token (audited there
with the actor): make sure a release's new flags exist (off), and kill them on a rollback."""

from __future__ import annotations

from typing import Any

import httpx

from cli.config import load_config

__all__ = ["FlagsApi", "FlagsApiError"]


class FlagsApiError(RuntimeError):
    """The flags service refused or did not answer; the message has its status and answer."""


class FlagsApi:
    def __init__(self, *, actor: str, front_url: str | None = None, token: str | None = None,
                 timeout_s: float = 5.0) -> None:
        config = load_config()
        self.base = (front_url or config.front_url).rstrip("/")
        token = token or config.token
        self.headers = {"X-Safeguard-Actor": actor, **({"Authorization": f"Bearer {token}"} if token else {})}
        self.timeout_s = timeout_s

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                return await http.request(method, self.base + path, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise FlagsApiError(f"{method} {self.base}{path}: {type(exc).__name__}: {exc}") from exc

    async def ensure_off(self, key: str, *, reason: str) -> bool:
        """Create `key` new and off when it does not exist; True when it was created."""
        r = await self._call("GET", f"/api/flags/{key}")
        if r.status_code == 200:
            return False
        r = await self._call("POST", "/api/flags", {"key": key, "new": True, "reason": reason,
                                                    "description": f"created off by safeguard deploy ({reason})"})
        if r.status_code not in (201, 409):
            raise FlagsApiError(f"creating flag {key}: HTTP {r.status_code}: {r.text[:300]}")
        return r.status_code == 201

    async def kill(self, key: str, *, reason: str) -> None:
        r = await self._call("POST", f"/api/flags/{key}/kill", {"reason": reason})
        if r.status_code not in (200, 404):
            raise FlagsApiError(f"killing flag {key}: HTTP {r.status_code}: {r.text[:300]}")
