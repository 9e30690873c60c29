"""The stack's HTTP API through the front door: every failure becomes a CliError with its exit code."""

from __future__ import annotations

from typing import Any

import httpx

from cli.config import Config
from cli.errors import CliError, Exit

__all__ = ["Front"]

_GATEWAY_DOWN = {502, 503, 504}


class Front:
    def __init__(self, config: Config, *, timeout: float = 10.0) -> None:
        self.config = config
        self._timeout = timeout

    def token(self) -> str:
        if not self.config.token:
            raise CliError(f"no admin token: set SAFEGUARD_ADMIN_TOKEN or run `make up` in {self.config.home} "
                           "(it writes .stack/admin-token), or point SAFEGUARD_HOME at the checkout",
                           code=Exit.USAGE)
        return self.config.token

    def get(self, path: str, *, admin: bool = False) -> Any:
        return self._call("GET", path, admin=admin, body=None)

    def post(self, path: str, *, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, admin=True, body=body)

    def _call(self, method: str, path: str, *, admin: bool, body: dict[str, Any] | None) -> Any:
        headers = {"X-Safeguard-Actor": "cli"}
        token = self.token() if admin else self.config.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = self.config.front_url + path
        try:
            resp = httpx.request(method, url, json=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise CliError(f"{self.config.front_url} does not answer ({exc.__class__.__name__}: {exc})",
                           code=Exit.UNREACHABLE) from None
        if resp.status_code in _GATEWAY_DOWN:
            raise CliError(f"{method} {path}: HTTP {resp.status_code}: the service behind the front door does not "
                           f"answer ({_detail(resp)})", code=Exit.UNREACHABLE)
        if resp.status_code >= 400:
            raise CliError(f"{method} {path}: HTTP {resp.status_code}: {_detail(resp)}", code=Exit.FAILED)
        return resp.json() if resp.content else None


def _is_json(resp: httpx.Response) -> bool:
    return "json" in resp.headers.get("content-type", "")


def _detail(resp: httpx.Response) -> str:
    if _is_json(resp):
        data = resp.json()
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"])[:500]
    return resp.text[:500]
