"""Baselines for bench/kill_fanout.py: a bare SSE endpoint that broadcasts the same bytes to every subscriber.

    python -m bench._bare_sse asgi PORT KEY     # raw ASGI app on uvicorn (same server and settings as flags)
    python -m bench._bare_sse direct PORT KEY   # plain asyncio server: the bytes written to each transport

GET (any path) opens a stream (a `snapshot` event first, like flags); POST (any path) broadcasts one `flag`
event for KEY at the next revision and answers 200 once it is handed over. No auth, no caps, no framework.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

__all__: list[str] = []


class _Events:
    def __init__(self, key: str) -> None:
        self.key, self.revision = key, 1

    def next(self) -> bytes:
        self.revision += 1
        flag = {"key": self.key, "version": self.revision, "definition": {
            "state": "DISABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}, "offVariant": "off"}
        data = json.dumps({"type": "flag", "key": self.key, "revision": self.revision, "flag": flag},
                          separators=(",", ":"))
        return f"event: flag\nid: {self.revision}\ndata: {data}\n\n".encode()


SNAPSHOT = b'event: snapshot\nid: 1\ndata: {"revision":1,"flags":{}}\n\n'


def asgi_app(events: _Events) -> Any:
    subs: set[asyncio.Queue[bytes]] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            body = events.next()
            for sub in subs:
                sub.put_nowait(body)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        q: asyncio.Queue[bytes] = asyncio.Queue()
        subs.add(q)
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
            await send({"type": "http.response.body", "body": SNAPSHOT, "more_body": True})
            while True:
                await send({"type": "http.response.body", "body": await q.get(), "more_body": True})
        finally:
            subs.discard(q)

    return app


async def direct(port: int, events: _Events) -> None:
    subs: set[asyncio.Transport] = set()

    class Conn(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.t, self.buf = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            if self.buf.startswith(b"POST"):
                body = events.next()
                for t in subs:
                    t.write(b"%x\r\n%b\r\n" % (len(body), body))
                self.t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                self.buf = b""
                return
            subs.add(self.t)
            self.t.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                         + b"%x\r\n%b\r\n" % (len(SNAPSHOT), SNAPSHOT))

        def connection_lost(self, exc: Exception | None) -> None:
            subs.discard(self.t)

    server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    mode, port, ev = sys.argv[1], int(sys.argv[2]), _Events(sys.argv[3])
    if mode == "asgi":
        import uvicorn
        uvicorn.run(asgi_app(ev), host="127.0.0.1", port=port, log_config=None, access_log=False, backlog=2048,
                    timeout_graceful_shutdown=1)
    else:
        asyncio.run(direct(port, ev))
