"""An http probe never reuses an idle connection: HAProxy (`timeout http-keep-alive 15s`) and most
servers close idle keep-alive connections, and a probe sent on one that the server is closing fails
with "Server disconnected without sending a response" (seen in compose as targets flapping to warn)."""

from __future__ import annotations

import asyncio

from services.health.config import HttpTarget
from services.health.probes import Defaults, Prober

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


async def test_every_probe_opens_its_own_connection() -> None:
    """The server answers the first request of a connection and hangs up on any later one, as a server
    closing an idle keep-alive connection does at the moment the next request arrives."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
        try:
            await reader.readuntil(b"\r\n\r\n")  # a second request on this connection: close without a word
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    prober = Prober(Defaults(postgres_dsn="", redis_url="", kafka_bootstrap=""))
    target = HttpTarget(name="app", kind="http", url=f"http://127.0.0.1:{port}/healthz")
    try:
        results = [await prober.probe(target, 2.0) for _ in range(3)]
    finally:
        await prober.aclose()
        server.close()
        await server.wait_closed()
    assert [r.status for r in results] == ["pass", "pass", "pass"], results
    assert connections == 3
