"""A kept-alive client of the front door (:3000) loses no request when a service closes an idle connection.

uvicorn closes a kept-alive connection after it idles KEEP_ALIVE_S. HAProxy keeps its connections to the services
and sends a client's next request on one of them; a request sent just as the service closes that connection gets no
answer, and HAProxy (`http-reuse safe`) then closes the client's connection without a word: httpx raised
"Server disconnected without sending a response" to the SDK, the console in a browser, the CLI. The race is made
certain here: a private HAProxy on stack/haproxy.cfg.in, every front-door backend pointed at a server that answers
the first request on each connection and closes the connection when the next one comes (what uvicorn does when its
keep-alive ends as the request arrives). Every request on one kept-alive client connection must be answered."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import time
import types
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from deploy.traffic.lab import TEMPLATE, PrivateHaproxy, free_port
from shared.http import KEEP_ALIVE_S

ROUTES = {  # one path per front-door backend (stack/haproxy.cfg.in's `use_backend` lines)
    "flags": "/api/flags", "health": "/api/health", "notifier": "/api/incidents", "recovery": "/api/recovery",
    "sla": "/api/sla", "console": "/console", "intake": "/api/beacon",
}
BACKEND_ADDRS = ("FLAGS_ADDR", "HEALTH_ADDR", "NOTIFIER_ADDR", "RECOVERY_ADDR", "SLA_ADDR", "CONSOLE_ADDR",
                 "INTAKE_ADDR")
BODY = b'{"status":"pass"}'


class OneRequestPerConnection:
    """Answers the first request on a connection; closes the connection, unanswered, when a second one comes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dropped = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> OneRequestPerConnection:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:  # HAProxy's idle connections: their handlers end at EOF
            writer.close()
        await asyncio.sleep(0.1)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            for n in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if n == 1:
                    self.dropped += 1
                    break
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(BODY), BODY))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.writers.discard(writer)
        writer.close()


@pytest.fixture
async def front_door() -> AsyncIterator[tuple[str, OneRequestPerConnection]]:
    async with OneRequestPerConnection() as service:
        workdir = Path(tempfile.mkdtemp(prefix="sg-reuse-"))
        absent = types.SimpleNamespace(port=free_port())
        haproxy = PrivateHaproxy(workdir, blue=absent, green=absent)  # type: ignore[arg-type]
        haproxy.values.update({name: f"127.0.0.1:{service.port}" for name in BACKEND_ADDRS})
        haproxy.proc = haproxy._launch(haproxy.config())
        url = f"http://{haproxy.values['FRONT_BIND']}"
        try:
            await _all_routed(url)
            yield url, service
        finally:
            haproxy.stop()


async def _all_routed(url: str, timeout: float = 15.0) -> None:
    """Each backend's server is UP (a new connection per request, so the first request of each)."""
    deadline = time.monotonic() + timeout
    for path in ROUTES.values():
        while True:
            with contextlib.suppress(httpx.HTTPError):  # HAProxy not listening yet
                async with httpx.AsyncClient(base_url=url) as fresh:
                    if (await fresh.get(path)).status_code == 200:
                        break
            assert time.monotonic() < deadline, f"{path} not routed after {timeout}s"
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", sorted(ROUTES))
async def test_requests_on_a_kept_alive_client_connection_are_all_answered(
        front_door: tuple[str, OneRequestPerConnection], backend: str) -> None:
    url, service = front_door
    path = ROUTES[backend]
    answers: list[tuple[str, int | str]] = []
    async with httpx.AsyncClient(base_url=url) as client:  # one connection to HAProxy, kept alive
        for method in ("GET", "GET", "POST", "GET", "POST"):
            try:
                answers.append((method, (await client.request(method, path, content=b"{}")).status_code))
            except httpx.HTTPError as exc:
                answers.append((method, f"{type(exc).__name__}: {exc}"))
    assert answers == [(m, 200) for m, _ in answers], f"{backend}: {answers}"


def _seconds(directive: str) -> float:
    value = re.search(rf"(?m)^\s*timeout {directive} (\d+)(ms|s)$", TEMPLATE.read_text())
    assert value, f"no `timeout {directive}` in {TEMPLATE}"
    return int(value.group(1)) / (1000 if value.group(2) == "ms" else 1)


def test_the_servers_keep_an_idle_connection_longer_than_their_clients_do() -> None:
    """The other side of the race, between a client and HAProxy or a service: httpx (the SDK, the CLI, the demo)
    lets go of an idle connection after 5 s; HAProxy's client side and our services must keep one longer, or a
    request sent at 5 s meets the close."""
    httpx_default = httpx.Limits().keepalive_expiry
    assert httpx_default is not None
    assert _seconds("http-keep-alive") > httpx_default
    assert KEEP_ALIVE_S > httpx_default
