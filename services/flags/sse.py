"""The SSE stream's body (`GET /api/flags/_stream`): a `snapshot` event with every flag, then one `flag` event
per change from the broadcaster, a keep-alive comment every 15 s; the stream's slot is given back however
it ends."""

from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.flags.service import FlagService
from services.flags.snapshot import KEEPALIVE, sse_event

__all__ = ["Stream", "events"]


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
            yield b": keep-alive\n\n" if msg is KEEPALIVE else broadcaster.encoded(msg)
    finally:
        broadcaster.unsubscribe(queue)
