"""The demo's flag source: a tiny port so the OFREP adapter can be swapped for `sdk.flags`.

Errors answer the default (off): a new feature never turns on because the flag service is away.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx

__all__ = ["FlagSource", "OfrepFlags", "SdkFlags", "StaticFlags"]


class FlagSource(Protocol):
    async def enabled(self, key: str, *, targeting_key: str) -> bool: ...


class StaticFlags:
    def __init__(self, **flags: bool) -> None:
        self.flags = dict(flags)

    async def enabled(self, key: str, *, targeting_key: str) -> bool:
        return self.flags.get(key, False)


class OfrepFlags:
    """POST {base}/ofrep/v1/evaluate/flags/{key} with the user as targetingKey; short cache."""

    def __init__(self, base_url: str, *, cache_s: float = 0.5, timeout_s: float = 0.5,
                 client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_s = cache_s
        self.http = client or httpx.AsyncClient(timeout=timeout_s)
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self.errors = 0

    async def enabled(self, key: str, *, targeting_key: str) -> bool:
        now = time.monotonic()
        hit = self._cache.get((key, targeting_key))
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        try:
            r = await self.http.post(f"{self.base_url}/ofrep/v1/evaluate/flags/{key}",
                                     json={"context": {"targetingKey": targeting_key}})
            value = r.status_code == 200 and r.json().get("value") is True
        except (httpx.HTTPError, ValueError):
            self.errors += 1
            value = False
        self._cache[(key, targeting_key)] = (now, value)
        return value

    async def aclose(self) -> None:
        await self.http.aclose()


class SdkFlags:
    """`sdk.flags.FlagClient`: local evaluation, live updates over SSE (the default source)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def enabled(self, key: str, *, targeting_key: str) -> bool:
        return bool(self.client.get_boolean(key, False, {"targetingKey": targeting_key}))
