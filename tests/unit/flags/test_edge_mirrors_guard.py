"""The edge answers a request only when the guard would let it through: for any mix of Host, Origin,
Sec-Fetch-Site, body size, nesting and framing, an answer from the edge implies the guard passes the same
request to the app. A check added to `shared/guard.py` and not mirrored in the edge fails this."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings, strategies as st

from shared.guard import Guard, GuardSettings
from tests.unit.flags.test_edge import BODY, SINGLE, StreamWire, Wire, _edge

GUARD = GuardSettings(max_json_depth=8, max_body_bytes=1024)
HOSTS = [None, "127.0.0.1:8001", "localhost", "flags", "[::1]:8001", "evil.example.com", "EVIL.example.com.",
         "127.0.0.1, evil.example.com", "rebind.attacker.test:8001"]
ORIGINS = [None, "https://evil.example.com", "http://127.0.0.1:8001", "null", "http://localhost"]
FETCH_SITES = [None, "cross-site", "same-site", "same-origin", "none", "CROSS-SITE"]
BODIES = {"plain": BODY, "deep": b'{"context":{"a":' + b"[" * 12 + b"]" * 12 + b"}}",
          "deep in a string": b'{"context":{"a":"' + b"[" * 12 + b'"}}',
          "large": b'{"context":{"x":"' + b"a" * 1500 + b'"}}', "not JSON": b"[[[[[[[[[[[[", "empty": b""}


def _request(method: str, host: str | None, origin: str | None, site: str | None, body: bytes,
             chunked: bool) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    for name, value in ((b"host", host), (b"origin", origin), (b"sec-fetch-site", site)):
        if value is not None:
            headers.extend((name, v.strip().encode()) for v in ([value] if name != b"host" else value.split(", ")))
    if method == "POST":
        headers.append((b"transfer-encoding", b"chunked") if chunked else (b"content-length", str(len(body)).encode()))
    path = SINGLE if method == "POST" else "/api/flags/_stream"
    return {"type": "http", "method": method, "path": path, "headers": headers, "client": ("127.0.0.1", 5000)}


async def _guard_passes(scope: dict[str, Any], body: bytes) -> bool:
    passed = False

    async def app(*_: Any) -> None:
        nonlocal passed
        passed = True
    wire = Wire(body)
    await Guard(app, settings=GUARD)(dict(scope), wire.receive, wire.send)
    return passed


async def _edge_answers(scope: dict[str, Any], body: bytes) -> bool:
    edge, _, _ = await _edge()
    edge.guard = Guard.checks_only(settings=GUARD)
    wire: Wire = StreamWire() if scope["method"] == "GET" else Wire(body)
    task = asyncio.create_task(edge(dict(scope), wire.receive, wire.send))
    await asyncio.sleep(0.01)
    if isinstance(wire, StreamWire):
        wire.leave()
    left = await asyncio.wait_for(task, 2)
    return left is None and bool(wire.sent)


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["POST", "GET"]), host=st.sampled_from(HOSTS), origin=st.sampled_from(ORIGINS),
       site=st.sampled_from(FETCH_SITES), body=st.sampled_from(sorted(BODIES)), chunked=st.booleans())
def test_the_edge_answers_only_what_the_guard_lets_through(method: str, host: str | None, origin: str | None,
                                                          site: str | None, body: str, chunked: bool) -> None:
    raw = BODIES[body] if method == "POST" else b""
    scope = _request(method, host, origin, site, raw, chunked)

    async def check() -> None:
        if await _edge_answers(scope, raw):
            assert await _guard_passes(scope, raw), f"the edge answered what the guard refuses: {scope['headers']}"
    asyncio.run(check())
