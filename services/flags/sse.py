"""The SSE stream's body (`GET /api/flags/_stream`): a `snapshot` event with every flag, then one `flag` event
per change from the broadcaster, a keep-alive comment every 15 s; the stream's slot is given back however
it ends.

`serve` sends it in plain ASGI, for the edge ahead of FastAPI and, as `Stream`, for the FastAPI route: one
coroutine per stream and a waiter for the client's disconnect. Each change is serialized once for every
subscriber (`Broadcaster.encoded`) and keep-alives come from one shared timer (docs/kill-fanout.md)."""

import asyncio
from collections.abc import Callable, Sequence

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.flags.service import FlagService
from services.flags.snapshot import KEEPALIVE, KEEPALIVE_BYTES, Direct, end, sse_event
from services.flags.wire import cycle

__all__ = ["Stream", "serve"]

_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]


class Stream(Response):
    """The FastAPI route's answer: `serve` as a response, giving its SSE slot back however the stream ends (also
    when it never started)."""

    def __init__(self, svc: FlagService, *, release: Callable[[], None]) -> None:
        super().__init__(media_type="text/event-stream")
        self.svc, self._release = svc, release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await serve(self.svc, receive, send)
        finally:
            self._release()


async def serve(svc: FlagService, receive: Receive, send: Send, *, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """The stream in plain ASGI, each message sent straight to the server (no response task group, no generator;
    from the edge, no middleware's send wrappers either). The client's disconnect ends it.

    Under uvicorn, with `send` its own and the body chunked, the stream becomes `Direct` after the snapshot: the
    Broadcaster writes each event to the connection itself, and this coroutine only waits for the end."""
    broadcaster = svc.broadcaster
    queue = broadcaster.subscribe(keepalive=True)
    left = asyncio.ensure_future(_disconnect(receive))
    left.add_done_callback(lambda _: end(queue))
    direct: Direct | None = None
    try:
        snap = svc.snapshot.client_payload()
        await send({"type": "http.response.start", "status": 200, "headers": [*_HEADERS, *extra]})
        await send({"type": "http.response.body", "body": sse_event("snapshot", snap, snap["revision"]),
                    "more_body": True})
        transport = _chunked_transport(send)
        if transport is not None and not left.done():
            direct = Direct(transport)
            broadcaster.hand_over(queue, direct)
            await asyncio.wait((left, direct.ended), return_when=asyncio.FIRST_COMPLETED)
            if not left.done():  # the service ended it and closes the connection: return once the server saw it go
                if not (await asyncio.wait((left,), timeout=5))[0]:
                    transport.abort()
                    await left
            return
        while (msg := await queue.get()) is not None:
            body = KEEPALIVE_BYTES if msg is KEEPALIVE else broadcaster.encoded(msg)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if not left.done():  # the service ended it (shutdown, or too slow a reader): the client reconnects
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # the connection went away under a send
        pass
    finally:
        if direct is not None:
            broadcaster.detach(direct)
        broadcaster.unsubscribe(queue)
        left.cancel()


def _chunked_transport(send: Send) -> asyncio.WriteTransport | None:
    """The connection under uvicorn's response cycle (`wire.cycle`) when the body it began is chunked
    (no Content-Length: httptools always, h11 when the client speaks HTTP/1.1). Else None: another server, an
    HTTP/1.0 body ended by closing, a wrapped `send`; the stream then goes through `send`."""
    owner = cycle(send)
    transport = None if owner is None or owner.disconnected else owner.transport
    if transport is None or not callable(getattr(transport, "get_write_buffer_size", None)):
        return None
    conn = getattr(owner, "conn", None)  # h11's Connection
    chunked = (getattr(owner, "chunked_encoding", None) is True
               or (conn is not None and getattr(conn, "their_http_version", None) == b"1.1"))
    return transport if chunked else None


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
