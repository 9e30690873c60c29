"""The SSE stream's body (`GET /api/flags/_stream`): a `snapshot` event with every flag, then one `flag` event
per change from the broadcaster, a keep-alive comment every 15 s; the stream's slot is given back however
it ends.

Two ways to send it: `serve`, plain ASGI for the edge ahead of FastAPI (one coroutine per stream and a
waiter for the client's disconnect), and `Stream(events(...))`, the FastAPI route's response."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.flags.service import FlagService
from services.flags.snapshot import KEEPALIVE, sse_event

__all__ = ["Stream", "events", "serve"]

Queue = asyncio.Queue[dict[str, Any] | None]
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]
_KEEPALIVE_BYTES = b": keep-alive\n\n"


class Stream(StreamingResponse):
    """Gives its SSE slot back however the stream ends (also when it never started)."""

    def __init__(self, body: AsyncIterator[bytes], *, release: Callable[[], None]) -> None:
        super().__init__(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache",
                                                                         "X-Accel-Buffering": "no"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def events(request: Request, svc: FlagService) -> AsyncIterator[bytes]:
    """Each change is serialized once for every subscriber (`Broadcaster.encoded`) and keep-alives come from
    one shared timer, so a kill costs the server ~half the CPU per subscriber (docs/kill-fanout.md). A client
    that left is noticed by the response (ASGI disconnect) or, half-open, at the next keep-alive."""
    broadcaster = svc.broadcaster
    queue = broadcaster.subscribe(keepalive=True)
    try:
        snap = svc.snapshot.client_payload()
        yield sse_event("snapshot", snap, snap["revision"])
        while (msg := await queue.get()) is not None:
            yield _KEEPALIVE_BYTES if msg is KEEPALIVE else broadcaster.encoded(msg)
    finally:
        broadcaster.unsubscribe(queue)


async def serve(svc: FlagService, receive: Receive, send: Send, *, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """The stream in plain ASGI: the same events as `events`, each message sent straight to the server (no
    response task group, no generator, no middleware's send wrappers). The client's disconnect ends it."""
    broadcaster = svc.broadcaster
    queue = broadcaster.subscribe(keepalive=True)
    left = asyncio.ensure_future(_disconnect(receive))
    left.add_done_callback(lambda _: _end(queue))
    try:
        snap = svc.snapshot.client_payload()
        await send({"type": "http.response.start", "status": 200, "headers": [*HEADERS, *extra]})
        await send({"type": "http.response.body", "body": sse_event("snapshot", snap, snap["revision"]),
                    "more_body": True})
        while (msg := await queue.get()) is not None:
            body = _KEEPALIVE_BYTES if msg is KEEPALIVE else broadcaster.encoded(msg)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if not left.done():  # the service ended it (shutdown, or too slow a reader): the client reconnects
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # the connection went away under a send
        pass
    finally:
        broadcaster.unsubscribe(queue)
        left.cancel()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _end(queue: Queue) -> None:
    """Wake the stream's writer with the end marker, dropping what it has not sent (it will not be read)."""
    try:
        queue.put_nowait(None)
    except asyncio.QueueFull:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)
