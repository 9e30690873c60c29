"""`POST /api/beacon`: a valid beacon -> PageLoadObserved; each limit answers its 4xx with a message."""

from __future__ import annotations

import json

import pytest

from shared.events import PageLoadObserved
from tests.unit.intake.conftest import PAGE, Env

GOOD = {"service": "shop", "page": "/checkout?token=secret#top", "lcp_ms": 1234.5, "load_ms": 1800,
        "ttfb_ms": 90, "dom_content_loaded_ms": 700, "rating": "good"}


async def _post(env: Env, body: object, *, origin: str | None = PAGE, ctype: str = "text/plain;charset=UTF-8"):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": ctype} | ({"origin": origin} if origin else {})
    return await env.client.post("/api/beacon", content=raw, headers=headers)


@pytest.mark.parametrize("ctype", ["text/plain;charset=UTF-8", "application/json"])
async def test_a_beacon_becomes_a_page_load(env: Env, ctype: str) -> None:
    r = await _post(env, GOOD, ctype=ctype)
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == PAGE
    [event] = env.pub.of_type(PageLoadObserved)
    assert isinstance(event, PageLoadObserved)
    assert (event.service, event.page, event.load_ms, event.ttfb_ms, event.dom_content_loaded_ms) == \
        ("shop", "/checkout", 1800.0, 90.0, 700.0)


async def test_lcp_stands_in_for_the_load_time(env: Env) -> None:
    r = await _post(env, {"service": "shop", "page": "http://127.0.0.1:8100/", "lcp_ms": 2500})
    assert r.status_code == 204
    [event] = env.pub.of_type(PageLoadObserved)
    assert (event.page, event.load_ms) == ("/", 2500.0)  # type: ignore[attr-defined]


async def test_origins_outside_the_allow_list_are_403(env: Env) -> None:
    r = await _post(env, GOOD, origin="https://evil.example")
    assert r.status_code == 403
    assert r.json() == {"detail": "origin 'https://evil.example' may not send beacons (INTAKE_BEACON_ORIGINS)",
                        "errorCode": "ORIGIN"}
    r = await _post(env, GOOD, origin="http://127.0.0.1:8006")  # this host itself: not a page we serve
    assert r.status_code == 403
    assert "INTAKE_BEACON_ORIGINS" in r.json()["detail"]
    r = await env.client.options("/api/beacon", headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert env.pub.published == []


async def test_preflight_for_an_allowed_origin(env: Env) -> None:
    r = await env.client.options("/api/beacon", headers={"origin": PAGE, "access-control-request-method": "POST"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == PAGE
    assert r.headers["access-control-allow-methods"] == "POST"


async def test_too_large_is_413(env: Env) -> None:
    r = await _post(env, GOOD | {"pad": "x" * env.settings.beacon_max_bytes})
    assert r.status_code == 413
    assert f"at most {env.settings.beacon_max_bytes}" in r.json()["detail"]


async def test_other_content_types_are_415(env: Env) -> None:
    r = await _post(env, GOOD, ctype="application/x-www-form-urlencoded")
    assert r.status_code == 415 and "text/plain" in r.json()["detail"]


async def test_not_json_is_400(env: Env) -> None:
    r = await _post(env, b"lcp=12")
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]
    r = await _post(env, [1, 2])
    assert r.status_code == 400 and "JSON object" in r.json()["detail"]


@pytest.mark.parametrize(("change", "says"), [
    ({"lcp_ms": -1}, "lcp_ms: Input should be greater than or equal to 0"),
    ({"load_ms": 10**9}, "load_ms: 1000000000.0 ms is above the 600000 ms"),
    ({"service": "no spaces allowed"}, "service: String should match pattern"),
    ({"page": "checkout"}, "page: page must be a path"),
    ({"load_ms": None, "lcp_ms": None}, "send load_ms or lcp_ms"),
    ({"ttfb_ms": "fast"}, "ttfb_ms: Input should be a valid number"),
])
async def test_values_out_of_range_are_422_naming_the_field(env: Env, change: dict[str, object], says: str) -> None:
    r = await _post(env, GOOD | change)
    assert r.status_code == 422
    assert says in r.json()["detail"]
    assert env.pub.published == []


async def test_missing_service_is_422(env: Env) -> None:
    r = await _post(env, {k: v for k, v in GOOD.items() if k != "service"})
    assert r.status_code == 422 and "service: Field required" in r.json()["detail"]


async def test_rate_limit_per_client_is_429_with_retry_after(env: Env) -> None:
    codes = [(await _post(env, GOOD)).status_code for _ in range(5)]
    assert codes == [204] * 5
    r = await _post(env, GOOD)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert len(env.pub.of_type(PageLoadObserved)) == 5


async def test_kafka_down_is_503(env: Env) -> None:
    env.pub.fail_with = ConnectionError("broker away")
    r = await _post(env, GOOD)
    assert r.status_code == 503 and r.headers["access-control-allow-origin"] == PAGE
