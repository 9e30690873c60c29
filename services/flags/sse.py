"""The SSE stream's body (`GET /api/flags/_stream`): a `snapshot` event with every flag, then one `flag` event
per change from the broadcaster, a keep-alive comment every 15 s; the stream's slot is given back however
it ends."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.flags.service import FlagService

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
    queue = svc.broadcaster.subscribe()
    try:
        snap = svc.snapshot.client_payload()
        yield _sse("snapshot", snap, snap["revision"])
        while True:
            try:
                msg = await asyncio.wait_for(queue.get(), timeout=15.0)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if msg is None:
                return
            yield _sse("flag", msg, msg["revision"])
    finally:
        svc.broadcaster.unsubscribe(queue)


def _sse(event: str, data: Any, revision: int) -> bytes:
    return f"event: {event}\nid: {revision}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
