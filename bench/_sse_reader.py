"""A lean SSE reader process for bench/kill_fanout.py: holds N streams with raw asyncio protocols (no HTTP
library, one callback per read), and reports when every one of them has seen a `flag` event at a revision.

    python -m bench._sse_reader PORT N KEY TAG     # prints "ready", then "<revision> <count> <first_ns> <last_ns>"

Each stream sends `X-Forwarded-For: 10.<tag>.<i // 50>.<i % 50>` and no token: the flags service keys its
per-client stream cap on the forwarded address (its peer is the trusted loopback), so N streams are not held
to the 64 a single client may open. Times are CLOCK_REALTIME nanoseconds (comparable across processes).
A line is printed once a revision has reached all N streams; on stdin EOF the incomplete ones are printed
too (count < N), and the process exits.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

__all__: list[str] = []

_EVENT = re.compile(rb"event: flag\nid: (\d+)\ndata: ([^\n]*)")


class _Stream(asyncio.Protocol):
    def __init__(self, reader: _Reader, request: bytes) -> None:
        self.reader, self.request = reader, request
        self.buf = b""
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self.buf + data
        end = buf.rfind(b"\n\n")
        if end < 0:
            self.buf = buf
            return
        self.buf = buf[end + 2:]
        if not self.opened.done():
            if not buf.startswith(b"HTTP/1.1 200"):
                self.opened.set_exception(RuntimeError(buf.split(b"\r\n", 1)[0].decode()))
                return
            self.opened.set_result(None)
        if self.reader.marker in buf:
            for m in _EVENT.finditer(buf, 0, end):
                if self.reader.marker in m.group(2):
                    self.reader.seen(int(m.group(1)), now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the stream opened"))


class _Reader:
    def __init__(self, n: int, key: str) -> None:
        self.n = n
        self.marker = f'"key":"{key}"'.encode()
        self.revs: dict[int, list[int]] = {}  # revision -> [count, first arrival, last arrival]
        self.done: set[int] = set()

    def seen(self, rev: int, now: int) -> None:
        got = self.revs.setdefault(rev, [0, now, now])
        got[0] += 1
        got[2] = max(got[2], now)
        if got[0] == self.n:
            self.done.add(rev)
            sys.stdout.write(f"{rev} {got[0]} {got[1]} {got[2]}\n")
            sys.stdout.flush()


async def _run(port: int, n: int, key: str, tag: int) -> None:
    loop = asyncio.get_running_loop()
    reader = _Reader(n, key)
    transports = []
    for start in range(0, n, 100):
        streams = []
        for i in range(start, min(n, start + 100)):
            req = (f"GET /api/flags/_stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
                   f"X-Forwarded-For: 10.{tag}.{i // 50}.{i % 50}\r\n\r\n").encode()
            s = _Stream(reader, req)
            t, _ = await loop.create_connection(lambda s=s: s, "127.0.0.1", port)  # type: ignore[misc]
            transports.append(t)
            streams.append(s)
        await asyncio.gather(*(s.opened for s in streams))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for rev, (count, first, last) in sorted(reader.revs.items()):
        if rev not in reader.done:
            print(f"{rev} {count} {first} {last}", flush=True)
    for t in transports:
        t.close()


if __name__ == "__main__":
    asyncio.run(_run(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
