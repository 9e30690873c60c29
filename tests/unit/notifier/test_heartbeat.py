"""The notifier's heartbeat to a dead man's switch (a real HTTP receiver on loopback): it beats while the
notifier is healthy, is withheld while a consumer of it is dead or stuck, and its URL (which carries the
switch's token) never reaches the log, whatever goes wrong."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from services.notifier import heartbeat
from shared.testing.http import serving

TOKEN = "hc-7f3a9c2e-secret-token"


class Switch(HTTPServer):
    """A dead man's switch on loopback: keeps the paths it was pinged on, answers `status`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Ping)
        self.pings: list[str] = []
        self.status = 200


class _Ping(BaseHTTPRequestHandler):
    server: Switch

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.pings.append(self.path)
        self.send_response(self.server.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@contextlib.contextmanager
def switch() -> Iterator[tuple[Switch, str]]:
    with serving(Switch()) as sw:
        yield sw, f"http://127.0.0.1:{sw.server_address[1]}/ping/{TOKEN}"


async def test_it_beats_while_healthy_and_is_withheld_while_a_consumer_is_dead() -> None:
    healthy = True
    with switch() as (sw, url):
        async with httpx.AsyncClient() as http:
            task = asyncio.create_task(heartbeat.run(http, url, interval_s=0.05, healthy=lambda: healthy))
            await asyncio.sleep(0.3)
            assert len(sw.pings) >= 3 and sw.pings[0] == f"/ping/{TOKEN}"
            healthy = False
            await asyncio.sleep(0.1)
            withheld_from = len(sw.pings)
            await asyncio.sleep(0.3)
            assert len(sw.pings) == withheld_from, "no heartbeat while a consumer is dead: the switch pages"
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_the_url_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/ping/{TOKEN}"
    with caplog.at_level(logging.DEBUG), switch() as (sw, url):
        async with httpx.AsyncClient() as http:
            sw.status = 500
            assert not await heartbeat.beat(http, url, healthy=lambda: True)
            assert not await heartbeat.beat(http, closed, healthy=lambda: True)
            sw.status = 200
            assert await heartbeat.beat(http, url, healthy=lambda: True)
    text = "\n".join(r.getMessage() + str(r.args) + str(r.exc_info) for r in caplog.records)
    assert "answered 500" in text and "heartbeat not delivered: ConnectError" in text
    assert TOKEN not in text
