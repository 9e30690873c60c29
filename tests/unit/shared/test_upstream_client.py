"""Our clients of our own services drop an idle kept-alive connection before the server does (`shared.http`).

CI, 2026-12-02: the console's flags page answered 502. Its pooled connection to flags had been idle 5.0 s, httpx's
default keep-alive expiry and uvicorn's default keep-alive timeout alike: the request went out on the connection
as flags closed it, and got no answer. A client must give up an idle connection well before the server does."""

from __future__ import annotations

import inspect
from contextlib import AsyncExitStack
from typing import Any

import httpx
import uvicorn

from services.console.backends import Backends
from services.console.settings import ConsoleSettings
from services.recovery import app as recovery_app
from services.recovery.executors import factory
from shared import http as shared_http
from shared.http import KEEP_ALIVE_S, upstream_client


def _expiry(client: httpx.AsyncClient) -> float:
    return float(client._transport._pool._keepalive_expiry)  # type: ignore[attr-defined]


def test_a_client_lets_go_of_an_idle_connection_before_the_server_closes_it() -> None:
    assert _expiry(upstream_client()) < KEEP_ALIVE_S / 2
    assert _expiry(httpx.AsyncClient()) >= uvicorn.Config(app=None).timeout_keep_alive, (  # type: ignore[arg-type]
        "httpx's default meets uvicorn's default: the race this avoids")


def test_our_servers_keep_an_idle_connection_longer_than_any_client() -> None:
    assert "timeout_keep_alive=KEEP_ALIVE_S" in inspect.getsource(shared_http.serve)
    assert KEEP_ALIVE_S > _expiry(httpx.AsyncClient()), "httpx's default (the SDK, the CLI) lets go first"


async def test_the_console_backends_use_it() -> None:
    async with Backends.open(ConsoleSettings()) as backends:
        clients: list[Any] = [backends.flags, backends.health, backends.sla, backends.recovery, backends.notifier]
        assert all(_expiry(c) < KEEP_ALIVE_S / 2 for c in clients)


def test_recovery_calls_flags_with_it() -> None:
    for module in (recovery_app, factory):
        source = inspect.getsource(module)
        assert "upstream_client(" in source and "httpx.AsyncClient(" not in source, module.__name__


async def test_an_exit_stack_closes_it() -> None:
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(upstream_client(timeout=1.0))
    assert client.is_closed
