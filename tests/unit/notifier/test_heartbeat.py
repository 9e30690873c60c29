"""The notifier's heartbeat to a dead man's switch (a real HTTP receiver on loopback): it beats while the
notifier is healthy, is withheld while a consumer of it is dead or stuck, and its URL (which carries the
switch's token) never reaches the log, whatever goes wrong."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from services.notifier import heartbeat

TOKEN = "hc-7f3a9c2e-secret-token"


class Switch:
    """A dead man's switch: counts the pings it gets, answers `status`."""

    def __init__(self) -> None:
        self.pings: list[str] = []
        self.status = 200

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.pings.append(head.split(b" ", 2)[1].decode())
        writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK".encode())
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def switch() -> AsyncIterator[tuple[Switch, str]]:
    sw = Switch()
    server = await asyncio.start_server(sw.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield sw, f"http://127.0.0.1:{port}/ping/{TOKEN}"


async def test_it_beats_while_healthy_and_is_withheld_while_a_consumer_is_dead() -> None:
    healthy = True
    async with switch() as (sw, url), httpx.AsyncClient() as http:
        task = asyncio.create_task(heartbeat.run(http, url, interval_s=0.05, healthy=lambda: healthy))
        await asyncio.sleep(0.3)
        beats = len(sw.pings)
        assert beats >= 3 and sw.pings[0] == f"/ping/{TOKEN}"
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
    with caplog.at_level(logging.DEBUG):
        async with switch() as (sw, url), httpx.AsyncClient() as http:
            sw.status = 500
            assert not await heartbeat.beat(http, url, healthy=lambda: True)
            assert not await heartbeat.beat(http, closed, healthy=lambda: True)
            sw.status = 200
            assert await heartbeat.beat(http, url, healthy=lambda: True)
    text = "\n".join(r.getMessage() + str(r.args) + str(r.exc_info) for r in caplog.records)
    assert "answered 500" in text and "heartbeat not delivered: ConnectError" in text
    assert TOKEN not in text
