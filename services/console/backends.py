"""The services the console reads and changes, over their HTTP APIs (one pooled client each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from services.console.settings import ConsoleSettings
from shared.http import upstream_client

__all__ = ["Backends"]


@dataclass(frozen=True, slots=True)
class Backends:
    flags: httpx.AsyncClient
    health: httpx.AsyncClient
    sla: httpx.AsyncClient
    recovery: httpx.AsyncClient
    notifier: httpx.AsyncClient

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: ConsoleSettings) -> AsyncIterator[Backends]:
        timeout = httpx.Timeout(settings.upstream_timeout_s)
        async with AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(upstream_client(base_url=getattr(settings, f"{name}_url"),
                                                                      timeout=timeout))
                for name in ("flags", "health", "sla", "recovery", "notifier")
            }
            yield cls(**clients)
