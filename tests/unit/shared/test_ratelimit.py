"""shared.ratelimit: 429 with Retry-After, RateLimit headers, per-client keys, forged X-Forwarded-For."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI
from limits.aio.storage import Storage
from pydantic import SecretStr

from shared.auth import AuthSettings, Authenticator
from shared.ratelimit import RateLimiter, RateLimitMiddleware


def _app(limiter: RateLimiter) -> FastAPI:
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    return app


def _client(app: FastAPI, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_third_call_in_window_is_429_with_retry_after() -> None:
    async with _client(_app(RateLimiter(storage=None, default="2/minute"))) as c:
        first = await c.get("/x")
        assert first.status_code == 200
        assert first.headers["ratelimit-policy"] == '"default";q=2;w=60'
        assert first.headers["ratelimit"].startswith('"default";r=1;t=')
        assert (await c.get("/x")).status_code == 200
        refused = await c.get("/x")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit"].startswith('"default";r=0;')
    assert refused.json()["errorCode"] == "RATE_LIMITED"


async def test_health_is_exempt() -> None:
    async with _client(_app(RateLimiter(storage=None, default="1/minute"))) as c:
        codes = [(await c.get("/healthz")).status_code for _ in range(3)]
    assert codes == [200, 200, 200]


async def test_random_tokens_share_the_address_bucket() -> None:
    async with _client(_app(RateLimiter(storage=None, default="2/minute"))) as c:
        codes = [(await c.get("/x", headers={"Authorization": f"Bearer random-{i}"})).status_code for i in range(3)]
        assert codes == [200, 200, 429]
        assert (await c.get("/x", headers={"X-API-Key": "another"})).status_code == 429
        assert (await c.get("/x")).status_code == 429


async def test_verified_identities_get_their_own_buckets() -> None:
    auth = Authenticator(AuthSettings(admin_token=SecretStr("adm"), client_keys={"shop": SecretStr("k1")}))
    limiter = RateLimiter(storage=None, default="1/minute", identify=auth.verified_identity)
    async with _client(_app(limiter)) as c:
        assert (await c.get("/x", headers={"X-API-Key": "k1"})).status_code == 200
        assert (await c.get("/x", headers={"Authorization": "Bearer k1"})).status_code == 429  # same client
        assert (await c.get("/x", headers={"Authorization": "Bearer adm", "X-Safeguard-Actor": "a"})).status_code == 200
        assert (await c.get("/x", headers={"Authorization": "Bearer adm", "X-Safeguard-Actor": "b"})).status_code == 429
        assert (await c.get("/x", headers={"Authorization": "Bearer forged"})).status_code == 200  # the address's
        assert (await c.get("/x", headers={"Authorization": "Bearer forged-2"})).status_code == 429


async def test_forwarded_for_counts_only_from_trusted_proxy() -> None:
    limiter = RateLimiter(storage=None, default="1/minute")
    async with _client(_app(limiter), peer="127.0.0.1") as proxy:
        # through our proxy: the right-most entry is the real client, so two clients, two buckets
        assert (await proxy.get("/x", headers={"X-Forwarded-For": "10.0.0.1"})).status_code == 200
        assert (await proxy.get("/x", headers={"X-Forwarded-For": "10.0.0.2"})).status_code == 200
        assert (await proxy.get("/x", headers={"X-Forwarded-For": "9.9.9.9, 10.0.0.1"})).status_code == 429
    async with _client(_app(limiter), peer="203.0.113.7") as direct:
        # an untrusted peer cannot pick a fresh bucket by forging the header
        assert (await direct.get("/x", headers={"X-Forwarded-For": "1.1.1.1"})).status_code == 200
        assert (await direct.get("/x", headers={"X-Forwarded-For": "2.2.2.2"})).status_code == 429


class _BrokenStorage(Storage):
    STORAGE_SCHEME = ["broken"]

    def __init__(self) -> None:
        super().__init__("broken://")
        self.calls = 0

    @property
    def base_exceptions(self) -> type[Exception]:
        return ConnectionError

    async def _fail(self, *a: object, **k: object) -> object:
        self.calls += 1
        raise ConnectionError("redis down")

    incr = get = get_expiry = clear = reset = _fail  # type: ignore[assignment]
    acquire_sliding_window_entry = get_sliding_window = clear_sliding_window = _fail  # type: ignore[assignment]

    async def check(self) -> bool:
        return False


async def test_storage_down_falls_back_to_memory_and_still_limits() -> None:
    storage = _BrokenStorage()
    limiter = RateLimiter(storage=storage, default="2/minute", retry_redis_s=60)
    first = await limiter.hit("k")
    assert first.allowed and limiter.degraded
    assert storage.calls == 1
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    assert storage.calls == 1  # no retry while degraded


async def test_dependency_raises_429_on_one_route() -> None:
    limiter = RateLimiter(storage=None, default="100/second")
    app = FastAPI()
    RateLimiter.install_handler(app)

    @app.post("/slow", dependencies=[Depends(limiter.dependency("1/minute", name="slow"))])
    async def slow() -> dict[str, bool]:
        return {"ok": True}

    async with _client(app) as c:
        assert (await c.post("/slow")).status_code == 200
        second = await c.post("/slow")
    assert second.status_code == 429
    assert "retry-after" in second.headers
    assert second.headers["ratelimit-policy"] == '"slow";q=1;w=60'


@pytest.mark.parametrize("bad", ["", "ten per fortnight"])
def test_bad_limit_string_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        RateLimiter(storage=None, default=bad)
