"""A flag stream that goes silent (the flags instance hangs: its socket stays open, nothing comes) is given up
after `idle_timeout_s` and opened again, so the SDK serves a kill made meanwhile. The service sends a
keep-alive every 15 s, so silence longer than that means the stream is dead (the default is 45 s)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sdk.flags.client import FlagClient


def _event(name: str, payload: dict[str, Any]) -> bytes:
    body = f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


def _snapshot(revision: int, *, on: bool) -> dict[str, Any]:
    view = {"key": "f", "version": revision, "offVariant": "off",
            "definition": {"state": "ENABLED", "variants": {"on": True, "off": False},
                           "defaultVariant": "on" if on else "off"}}
    return {"revision": revision, "flags": {"f": view}}


@pytest.fixture
async def hanging_then_fresh() -> AsyncIterator[str]:
    """First stream: the snapshot, then silence (a hung instance). Every later one: a newer snapshot, f killed."""
    streams = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal streams
        await reader.readuntil(b"\r\n\r\n")
        streams += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(_event("snapshot", _snapshot(1, on=True) if streams == 1 else _snapshot(2, on=False)))
        await writer.drain()
        await asyncio.sleep(3600)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_a_silent_stream_is_opened_again_after_the_idle_timeout(hanging_then_fresh: str) -> None:
    async with FlagClient(hanging_then_fresh, idle_timeout_s=0.5, report_exposures=False) as client:
        assert client.get_boolean("f", False) is True
        started = time.monotonic()
        while client.get_boolean("f", True) is not False and time.monotonic() - started < 5:
            await asyncio.sleep(0.05)
        assert client.get_boolean("f", True) is False, "still serving f from the silent stream after 5 s"


def test_the_default_idle_timeout_outlasts_three_keepalives() -> None:
    from services.flags.snapshot import Broadcaster

    keepalive = Broadcaster()._keepalive_s
    assert FlagClient("http://127.0.0.1:1").idle_timeout_s == 3 * keepalive
