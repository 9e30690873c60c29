"""SSE streams written straight to their connection (`Direct` in services/flags/snapshot.py, `sse.serve` under
uvicorn): after the snapshot, the Broadcaster writes each event to every stream's connection itself, framed once
as an HTTP/1.1 chunk; no coroutine wakes per stream per event. Through a real uvicorn server (h11, as deployed) on
loopback, with the flags core in memory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from services.flags.edge import FlagsEdge
from services.flags.service import FlagService
from services.flags.snapshot import Broadcaster, sse_event
from tests.unit.flags.test_edge import _edge

STREAM = "/api/flags/_stream"
HOST = {"host": "127.0.0.1:8001"}


@pytest.fixture
async def served() -> AsyncIterator[tuple[FlagsEdge, FlagService, str]]:
    edge, _, svc = await _edge()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert await edge(scope, receive, send) is None, "the edge left it"

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http="h11", lifespan="off", log_config=None, access_log=False,
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(5):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield edge, svc, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        svc.broadcaster.close()
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def _until(check: Any) -> None:
    async with asyncio.timeout(3):
        while not check():
            await asyncio.sleep(0.01)


async def _read_until(chunks: AsyncIterator[bytes], got: bytearray, marker: bytes, *, start: int = 0) -> None:
    async with asyncio.timeout(3):
        while marker not in got[start:]:
            got += await anext(chunks)


async def test_after_the_snapshot_the_broadcaster_writes_each_event_to_the_connection(
        served: tuple[FlagsEdge, FlagService, str]) -> None:
    edge, svc, url = served
    async with httpx.AsyncClient(base_url=url, headers=HOST, timeout=5) as c, c.stream("GET", STREAM) as r:
        assert r.status_code == 200 and r.headers["transfer-encoding"] == "chunked"
        got, chunks = bytearray(), r.aiter_raw()
        snap = svc.snapshot.client_payload()
        await _read_until(chunks, got, b"\n\n")
        assert bytes(got) == sse_event("snapshot", snap, snap["revision"])
        assert svc.broadcaster.direct == 1 and svc.broadcaster.subscribers == 1
        await svc.set_enabled("gamification", enabled=False, kill=True, actor="admin:t", reason="test")
        await _read_until(chunks, got, b"\n\n", start=len(got))
        event = bytes(got).split(b"\n\n")[1] + b"\n\n"
        assert event.startswith(b"event: flag\nid: ") and b'"key":"gamification"' in event
    await _until(lambda: svc.broadcaster.subscribers == 0 and edge.slots.total == 0)


async def test_keep_alives_reach_a_direct_stream(served: tuple[FlagsEdge, FlagService, str]) -> None:
    _, svc, url = served
    svc.broadcaster = Broadcaster(keepalive_s=0.05)
    async with httpx.AsyncClient(base_url=url, headers=HOST, timeout=5) as c, c.stream("GET", STREAM) as r:
        got = bytearray()
        await _read_until(r.aiter_raw(), got, b": keep-alive\n\n: keep-alive\n\n")
        assert svc.broadcaster.direct == 1


async def test_an_http_1_0_stream_goes_through_the_server_and_ends_by_closing(
        served: tuple[FlagsEdge, FlagService, str]) -> None:
    edge, svc, url = served
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET " + STREAM.encode() + b" HTTP/1.0\r\nHost: 127.0.0.1:8001\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower()
    assert (await asyncio.wait_for(reader.readuntil(b"\n\n"), 3)).startswith(b"event: snapshot\n")
    assert svc.broadcaster.subscribers == 1 and svc.broadcaster.direct == 0  # HTTP/1.0: no chunks, no Direct
    await svc.set_enabled("gamification", enabled=False, kill=True, actor="admin:t", reason="test")
    assert (await asyncio.wait_for(reader.readuntil(b"\n\n"), 3)).startswith(b"event: flag\n")
    writer.close()
    await _until(lambda: svc.broadcaster.subscribers == 0 and edge.slots.total == 0)


async def test_a_reader_that_stops_reading_is_dropped_and_the_others_go_on(
        served: tuple[FlagsEdge, FlagService, str]) -> None:
    edge, svc, url = served
    svc.broadcaster = Broadcaster(direct_limit=256 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET " + STREAM.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1:8001\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"event: snapshot"), 3)  # then it reads no more
    async with httpx.AsyncClient(base_url=url, headers=HOST, timeout=5) as c, c.stream("GET", STREAM) as r:
        got, chunks = bytearray(), r.aiter_raw()
        await _read_until(chunks, got, b"event: snapshot")
        await _until(lambda: svc.broadcaster.direct == 2)
        pad = "x" * 32 * 1024
        for revision in range(1, 2001):  # 64 MB for the stalled reader: more than loopback's buffers hold
            svc.broadcaster.publish({"type": "flag", "key": "pad", "revision": revision, "pad": pad})
            await _read_until(chunks, got, b"id: %d\n" % revision, start=max(0, len(got) - 40))  # keeps up
            del got[:-40]
            if svc.broadcaster.direct == 1:
                break
        assert svc.broadcaster.direct == 1, "the stalled reader was not dropped"
        await _until(lambda: edge.slots.total == 1)  # its stream ended, its slot given back
        svc.broadcaster.publish({"type": "flag", "key": "after", "revision": 99999})
        await _read_until(chunks, got, b"id: 99999\n")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        async with asyncio.timeout(3):
            while await reader.read(1 << 20):
                pass
            raise ConnectionResetError("closed")  # EOF after what was buffered: dropped all the same
    writer.close()


async def test_closing_the_service_ends_each_body_and_frees_its_slot(
        served: tuple[FlagsEdge, FlagService, str]) -> None:
    edge, svc, url = served
    async with httpx.AsyncClient(base_url=url, headers=HOST, timeout=5) as c, c.stream("GET", STREAM) as r:
        got, chunks = bytearray(), r.aiter_raw()
        await _read_until(chunks, got, b"event: snapshot")
        svc.broadcaster.close()
        async with asyncio.timeout(3):
            async for part in chunks:  # the chunked body's end: the iteration ends without an error
                got += part
    assert svc.broadcaster.subscribers == 0
    await _until(lambda: edge.slots.total == 0)
