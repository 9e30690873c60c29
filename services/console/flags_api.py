"""The flags service's HTTP API as the console uses it: reads, and changes made with the admin token on
behalf of the signed-in operator (`X-Safeguard-Actor`, so the audit log says `admin:<name>`)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

__all__ = ["FlagsApi", "UpstreamError"]


class UpstreamError(Exception):
    """The flags service refused or did not answer; `status` is what the console answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(detail, list):  # pydantic's [{"loc": [...], "msg": "..."}]
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'body'}: {d.get('msg', '')}"
                         for d in detail if isinstance(d, dict))
    return str(detail)


class FlagsApi:
    def __init__(self, client: httpx.AsyncClient, *, token: SecretStr | None, actor: str | None = None) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        if actor:
            self._headers["X-Safeguard-Actor"] = actor

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = await self._client.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"the flags service did not answer ({type(exc).__name__})") from None
        if r.status_code >= 400:
            # the console's own token is refused: a configuration fault, not the operator's
            status = 502 if r.status_code == 401 else r.status_code
            raise UpstreamError(status, f"flags service: {_message(r)}")
        return r.json() if r.content else None

    async def all(self) -> list[dict[str, Any]]:
        flags: list[dict[str, Any]] = await self._call("GET", "/api/flags")
        return flags

    async def get(self, key: str) -> dict[str, Any]:
        flag: dict[str, Any] = await self._call("GET", f"/api/flags/{key}")
        return flag

    async def exposure(self, key: str) -> dict[str, Any]:
        """How many of the last hour's users saw `key`, and how many got it on (approximate)."""
        found: dict[str, Any] = await self._call("GET", f"/api/flags/{key}/exposure")
        return found

    async def audit(self, key: str, *, limit: int = 100) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self._call("GET", f"/api/flags/{key}/audit", params={"limit": limit})
        return entries

    async def schedules(self, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call("GET", f"/api/flags/{key}/schedule")
        return found

    async def act(self, key: str, action: str, *, reason: str) -> dict[str, Any]:
        """`action`: enable, disable or kill."""
        flag: dict[str, Any] = await self._call("POST", f"/api/flags/{key}/{action}", json={"reason": reason})
        return flag

    async def rollout(self, key: str, *, percent: float, reason: str) -> dict[str, Any]:
        flag: dict[str, Any] = await self._call("POST", f"/api/flags/{key}/rollout",
                                                json={"percent": percent, "reason": reason})
        return flag

    async def kill_new(self, *, reason: str) -> list[str]:
        body: dict[str, Any] = await self._call("POST", "/api/flags/_kill-new", json={"reason": reason})
        return list(body.get("killed", []))

    async def schedule(self, key: str, *, body: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("POST", f"/api/flags/{key}/schedule", json=body)
        return found

    async def cancel_schedule(self, key: str, schedule_id: int) -> None:
        await self._call("DELETE", f"/api/flags/{key}/schedule/{schedule_id}")
