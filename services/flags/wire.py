"""The connection under uvicorn's response cycle, for the flags edge's two hot paths (issue 12).

uvicorn hands an ASGI app its cycle's bound `send`. Where that `send` is not wrapped, the cycle and its
transport are one attribute away, and two things on the hot paths use them:

- `cycle(send)`: the SSE `Direct` streams write each event to the connection themselves
  (`services/flags/sse.py`).
- `send_whole(send, start, body)`: an answer's head and body leave in one `write`, so one `send()` syscall
  instead of two. uvicorn writes the head when `http.response.start` is sent and the body with
  `http.response.body`; each write is its own syscall (on uvloop the two took 28 % of an OFREP request's
  samples, `docs/performance.md`). Meanwhile the cycle writes to a holder; the bytes go out joined after the
  body, or at once when the cycle closes the connection. uvicorn's own logic (header checks, keep-alive,
  `Connection: close`, pipelining) runs unchanged, only its writes are held. Nothing but uvicorn's own send
  runs in between.

Another server, or a wrapped `send`, gets None / no holding: the answer goes out as it did.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Send

__all__ = ["cycle", "send_whole"]


def cycle(send: Send) -> Any | None:
    """uvicorn's response cycle behind `send` when it is the cycle's own bound method, else None."""
    owner = getattr(send, "__self__", None)
    if owner is None or not type(owner).__module__.startswith("uvicorn.protocols.http."):
        return None
    return owner if callable(getattr(getattr(owner, "transport", None), "write", None)) else None


class _Held:
    """Stands in for the transport while a response is written: writes are kept; anything else goes through."""

    __slots__ = ("transport", "parts")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def flush(self) -> None:
        if self.parts:
            data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self.parts = []
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def send_whole(send: Send, start: Message, body: Message) -> None:
    """Send a response's `http.response.start` and its one `http.response.body`; under uvicorn they leave
    in one write."""
    owner = cycle(send)
    if owner is None:
        await send(start)
        await send(body)
        return
    held = owner.transport = _Held(owner.transport)
    try:
        await send(start)
        await send(body)
    finally:
        owner.transport = held.transport
        held.flush()
