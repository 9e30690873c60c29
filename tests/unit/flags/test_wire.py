"""An OFREP answer leaves in one write (`services/flags/wire.py`, issue 12): uvicorn writes a response's head
and body separately, one `send()` syscall each; the edge holds the first and writes both joined. Through a real
uvicorn (h11, as deployed; httptools too when installed) on loopback, with the flags core in memory: what the
connection was asked to write, and that uvicorn's own handling (keep-alive, `Connection: close`, a wrapped
`send`) is unchanged."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Message

from services.flags.wire import cycle, send_whole
from tests.unit.flags.test_edge import _edge

SINGLE, BULK = "/ofrep/v1/evaluate/flags/gamification", "/ofrep/v1/evaluate/flags"
HOST = {"host": "127.0.0.1:8001"}
CONTEXT = {"context": {"targetingKey": "user-1"}}
PARSERS = ["h11", *(["httptools"] if importlib.util.find_spec("httptools") else [])]


class Counting:
    """The connection's transport, keeping what it is asked to write (h11 also writes an empty end of message:
    not kept, it makes no syscall)."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self.transport, self.writes = transport, writes

    def write(self, data: bytes) -> None:
        if data:
            self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _serve(app: Any, http: str) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=http, lifespan="off", log_config=None, access_log=False,
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(5):
        while not server.started:
            await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(params=PARSERS)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, list[list[bytes]], dict[str, bool]]]:
    """A uvicorn serving the edge; per request, the writes its connection was asked for. `opts["wrap"]` puts a
    middleware's `send` wrapper around uvicorn's."""
    edge, _, svc = await _edge()
    requests: list[list[bytes]] = []
    opts = {"wrap": False}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        owner = cycle(send)
        assert owner is not None, "uvicorn's own send"
        writes: list[bytes] = []
        requests.append(writes)
        owner.transport = Counting(owner.transport, writes)
        if opts["wrap"]:
            inner = send

            async def send(message: Any) -> None:  # noqa: F811 - as a middleware would wrap it
                await inner(message)
        assert await edge(scope, receive, send) is None, "the edge left it"

    server, task, url = await _serve(app, request.param)
    try:
        yield url, requests, opts
    finally:
        svc.broadcaster.close()
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def test_an_answer_is_one_write_holding_head_and_body(served: Any) -> None:
    url, requests, _ = served
    async with httpx.AsyncClient(base_url=url, headers=HOST) as c:
        for path in (SINGLE, BULK):
            r = await c.post(path, json=CONTEXT)
            assert r.status_code == 200, r.text
            assert len(requests[-1]) == 1, f"{path}: {len(requests[-1])} writes"
            (wire,) = requests[-1]
            assert wire.startswith(b"HTTP/1.1 200 OK\r\n") and wire.endswith(b"\r\n\r\n" + r.content)
            assert r.headers["content-length"] == str(len(r.content)) and "ratelimit" in r.headers


async def test_keep_alive_goes_on_and_connection_close_still_closes(served: Any) -> None:
    url, requests, _ = served
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"context":{"targetingKey":"u"}}'
    request: Callable[[bytes], bytes] = lambda extra: (  # noqa: E731
        f"POST {SINGLE} HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n").encode() + extra + b"\r\n" + body
    try:
        async with asyncio.timeout(5):
            for extra in (b"", b"", b"Connection: close\r\n"):
                writer.write(request(extra))
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(
                    b"content-length")))
                assert head.startswith(b"HTTP/1.1 200 OK") and b'"value":true' in await reader.readexactly(length)
            assert (b"connection: close" in head.lower()) and await reader.read() == b"", "closed after the answer"
    finally:
        writer.close()
    assert [len(w) for w in requests] == [1, 1, 1]


async def test_a_wrapped_send_is_left_alone(served: Any) -> None:
    url, requests, opts = served
    opts["wrap"] = True
    async with httpx.AsyncClient(base_url=url, headers=HOST) as c:
        r = await c.post(SINGLE, json=CONTEXT)
    assert r.status_code == 200 and len(requests[-1]) == 2, "head and body as uvicorn writes them"


async def test_without_uvicorn_the_messages_go_through_send() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    start: Message = {"type": "http.response.start", "status": 200, "headers": []}
    body: Message = {"type": "http.response.body", "body": b"{}"}
    await send_whole(send, start, body)
    assert sent == [start, body] and cycle(send) is None
