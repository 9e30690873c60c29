"""shared.guard: Host allow-list, cross-site writes, body and JSON depth caps; and every served app has it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.guard import GuardSettings, install_guard, is_guarded, json_depth


def _app(settings: GuardSettings | None = None) -> FastAPI:
    app = FastAPI()

    @app.api_route("/x", methods=["GET", "POST", "PUT", "DELETE"])
    async def x(request: Request) -> dict[str, int]:
        return {"n": len(await request.body())}

    install_guard(app, settings=settings or GuardSettings(max_body_bytes=1000, max_json_depth=8), own_host="10.1.2.3")
    return app


def _client(app: FastAPI, base: str = "http://localhost:3000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 1)), base_url=base)


@pytest.mark.parametrize("host", ["localhost:3000", "127.0.0.1:8001", "[::1]:3000", "flags:8001", "10.1.2.3",
                                  "LOCALHOST.", "192.0.2.7:3000"])
async def test_local_hosts_pass(host: str) -> None:
    async with _client(_app()) as c:
        assert (await c.get("/x", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize("host", ["evil.example:3000", "rebind.attacker.net", "localhost.evil.example"])
async def test_a_rebound_name_is_refused(host: str) -> None:
    async with _client(_app()) as c:
        r = await c.put("/x", headers={"Host": host}, content=b"{}")
    assert r.status_code == 400
    assert r.json()["errorCode"] == "HOST_NOT_ALLOWED" and host.split(":")[0] in r.json()["detail"]


async def test_allowed_hosts_are_configurable() -> None:
    settings = GuardSettings(allowed_hosts=["safeguard.example.com"], allow_single_label_hosts=False,
                             allow_ip_hosts=False)
    async with _client(_app(settings)) as c:
        assert (await c.get("/x", headers={"Host": "safeguard.example.com"})).status_code == 200
        assert (await c.get("/x", headers={"Host": "flags:8001"})).status_code == 400
        assert (await c.get("/x", headers={"Host": "192.0.2.7"})).status_code == 400
        assert (await c.get("/x", headers={"Host": "10.1.2.3"})).status_code == 200  # its own address


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://localhost:8080"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site"}])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_cross_site_writes_are_403(method: str, headers: dict[str, str]) -> None:
    async with _client(_app()) as c:
        r = await c.request(method, "/x", headers={**headers, "Content-Type": "text/plain"}, content=b'{"a":1}')
    assert r.status_code == 403 and r.json()["errorCode"] == "CROSS_SITE"


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost:3000"}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Sec-Fetch-Site": "none"}, {"Origin": "https://ops.example.com"}])
async def test_same_origin_and_non_browser_writes_pass(headers: dict[str, str]) -> None:
    settings = GuardSettings(allowed_origins=["https://ops.example.com/"])
    async with _client(_app(settings)) as c:
        r = await c.post("/x", headers=headers, content=b'{"a":1}')
        assert r.status_code == 200, r.text
        assert (await c.get("/x", headers={"Origin": "https://evil.example"})).status_code == 200  # reads: CORS


async def test_body_over_the_cap_is_413_declared_or_chunked() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    async with _client(_app()) as c:
        assert (await c.post("/x", content=b"x" * 1000)).json()["n"] == 1000
        declared = await c.post("/x", content=b"x" * 1001)
        chunked = await c.post("/x", content=chunks())
    assert declared.status_code == 413 and "1000" in declared.json()["detail"]
    assert chunked.status_code == 413 and chunked.json()["errorCode"] == "BODY_TOO_LARGE"


@pytest.mark.parametrize("ctype", ["application/json", "application/x-www-form-urlencoded"])
async def test_deep_json_is_400_before_parsing(ctype: str) -> None:
    async with _client(_app()) as c:
        ok = await c.post("/x", content=b"[" * 8 + b"]" * 8, headers={"Content-Type": ctype})
        deep = await c.post("/x", content=b"[" * 9 + b"]" * 9, headers={"Content-Type": ctype})
        unclosed = await c.post("/x", content=b"[" * 900, headers={"Content-Type": ctype})
    assert ok.status_code == 200
    assert deep.status_code == 400 and deep.json()["errorCode"] == "JSON_TOO_DEEP"
    assert unclosed.status_code == 400


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(json.dumps({"a": "[[[[[[[[[[{{{{{{{{", "b": [[1]]}).encode(), 3) == 3
    assert json_depth(json.dumps({"a": '\\"[[[[[[[[[[', "b": [[[[[1]]]]]}).encode(), 3) > 3
    assert json_depth(b"[" * 100_000 + b"]" * 100_000, 64) == 65
    assert json_depth(b'{"a": [1, {"b": []}], "c": {}}', 2) == 3


def test_serve_installs_the_guard_in_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    import uvicorn

    from shared import http

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    app = FastAPI()
    http.serve(app, host="127.0.0.1", port=1)
    assert [getattr(s, "app", s) for s in served] == [app] and is_guarded(app)  # inside frozen_after_startup
