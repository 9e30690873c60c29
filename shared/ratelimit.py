"""API rate limiting on `limits` (Redis storage, in-memory fallback): 429 + Retry-After + IETF RateLimit headers.

Use it as an ASGI middleware over a whole app, or as a FastAPI dependency on one route:

    limiter = RateLimiter.from_settings(RateLimitSettings(), redis_url=settings.redis.url)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt=("/healthz",))
    @router.post("/x", dependencies=[Depends(limiter.dependency("10/second"))])

Each client gets its own window, keyed by its verified identity (`identify`, e.g.
`Authenticator.verified_identity`: a token that matches a configured key) or else by its address
(`client_address`: X-Forwarded-For is believed only from a trusted proxy). A token nobody
verified never earns a bucket of its own: it counts in its address's bucket.
Headers follow draft-ietf-httpapi-ratelimit-headers (09):
`RateLimit-Policy: "default";q=100;w=1` and `RateLimit: "default";r=99;t=1`.
When Redis does not answer, counting moves to process memory (per instance, so a
little looser) and goes back to Redis after `retry_redis_s`.

With the sliding-window counter on Redis (the default), a hit is ONE round trip: a Lua script
(`shared.ratelimit_redis`) that does what `limits`' acquire script does on the same keys and also returns
the window it saw, from which the RateLimit headers are computed as `limits`' `get_window_stats` would
(`limits` itself needs a second script call for the stats). Other strategies/storages use
`limits`' own `hit` + `get_window_stats`.

With `local=True` (`RATELIMIT_LOCAL`) hits are decided in process and reconciled with the same Redis
window in the background (`shared.ratelimit_local`): no request waits on Redis.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import functools
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter as _Strategy, SlidingWindowCounterRateLimiter
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ratelimit_local import LocalWindows
from shared.ratelimit_redis import OneTripSlidingWindow, Window

__all__ = [
    "RateLimitSettings", "RateLimiter", "RateLimitMiddleware", "RateLimitExceeded", "Decision",
    "client_address", "client_key", "Identify", "header_bytes", "refuse",
]

logger = logging.getLogger(__name__)
Strategy = Literal["moving-window", "sliding-window-counter"]


class RateLimitSettings(BaseSettings):
    """`RATELIMIT_*`. `default` is a `limits` string ("100/second", "1000 per minute")."""

    model_config = SettingsConfigDict(env_prefix="RATELIMIT_", extra="ignore")
    enabled: bool = True
    default: str = "100/second"
    strategy: Strategy = "sliding-window-counter"
    storage_url: SecretStr | None = Field(default=None, description="async+redis://...; default: the Redis url.")
    retry_redis_s: float = Field(default=5.0, gt=0, description="After Redis failed, use memory this long.")
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    local: bool = Field(default=False, description="Decide in process (GCRA), reconcile with Redis in the background.")
    sync_interval_s: float = Field(default=0.1, gt=0, description="With `local`: how often hits go to Redis.")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    window_s: int
    policy: str = "default"

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window_s}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_s}',
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.reset_s))
        return out


class RateLimitExceeded(Exception):
    """Raised by the FastAPI dependency; `install_handler` turns it into a 429."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("rate limit exceeded")
        self.decision = decision


@functools.lru_cache(maxsize=64)
def _parsed_networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _in(addr: str, nets: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in nets)


@functools.lru_cache(maxsize=4096)
def _in_cidrs(addr: str, cidrs: tuple[str, ...]) -> bool:
    return _in(addr, _parsed_networks(cidrs))


def client_address(conn: HTTPConnection, trusted_proxies: Iterable[str] = ("127.0.0.1/32", "::1/128")) -> str:
    """The caller's address. X-Forwarded-For counts only when the peer is a trusted proxy,
    and then only its right-most entry: the one our proxy appended, which a client cannot forge."""
    peer = conn.client.host if conn.client else ""
    if not _in_cidrs(peer, trusted_proxies if isinstance(trusted_proxies, tuple) else tuple(trusted_proxies)):
        return peer
    forwarded = [p.strip() for h in conn.headers.getlist("x-forwarded-for") for p in h.split(",") if p.strip()]
    return forwarded[-1] if forwarded else peer


Identify = Callable[[HTTPConnection], str | None]


def client_key(conn: HTTPConnection, trusted_proxies: Iterable[str] = ("127.0.0.1/32", "::1/128"), *,
               identify: Identify | None = None) -> str:
    """Per-client bucket key: the verified identity (`identify` returns None for unknown or no
    credentials), else the caller's address. A presented token alone is never a key: a random one
    per request would get a fresh bucket each time."""
    actor = identify(conn) if identify is not None else None
    if actor:
        return "id:" + hashlib.sha256(actor.encode()).hexdigest()[:24]
    return "ip:" + client_address(conn, trusted_proxies)


def _decision(item: RateLimitItem, window: Window, policy: str) -> Decision:
    """The headers' figures from a sliding window, computed as `limits`' get_window_stats does."""
    allowed, prev, prev_expires_in, cur, cur_expires_in = window
    expiry = item.get_expiry()
    remaining = max(0, item.amount - math.floor(prev * prev_expires_in / expiry + cur))
    reset_in = 0.0
    if prev or cur:  # `x % m or m`: a TTL of exactly 2 windows (a window set by this hit) is a full window, not 0
        reset_in = min((prev_expires_in % (expiry / prev) or expiry / prev) if prev else math.inf,
                       (cur_expires_in % expiry or expiry) if cur else math.inf)
    reset = max(0, min(expiry, math.ceil(reset_in)))
    return Decision(allowed=allowed, limit=item.amount, remaining=remaining, reset_s=reset, window_s=expiry,
                    policy=policy)


class RateLimiter:
    """A `limits` strategy over Redis with an in-memory fallback while Redis is down."""

    def __init__(self, *, storage: Storage | None, strategy: Strategy = "sliding-window-counter",
                 default: str = "100/second", retry_redis_s: float = 5.0,
                 trusted_proxies: Iterable[str] = ("127.0.0.1/32", "::1/128"), enabled: bool = True,
                 identify: Identify | None = None, local: bool = False, sync_interval_s: float = 0.1) -> None:
        kind = MovingWindowRateLimiter if strategy == "moving-window" else SlidingWindowCounterRateLimiter
        self._primary: _Strategy | None = kind(storage) if storage is not None else None
        self._one_trip = OneTripSlidingWindow.for_storage(storage) if kind is SlidingWindowCounterRateLimiter else None
        self._memory: _Strategy = kind(MemoryStorage())
        self._retry_s = retry_redis_s
        self._down_until = 0.0
        self.default = parse(default)
        self.trusted_proxies = tuple(trusted_proxies)
        self.enabled = enabled
        self.identify = identify
        self._local: LocalWindows | None = None
        if local:
            if storage is not None and self._one_trip is None:
                raise ValueError("local decisions reconcile through the sliding-window counter on Redis "
                                 "(strategy sliding-window-counter, an async+redis:// storage)")
            self._local = LocalWindows(sync=self._sync if self._one_trip is not None else None,
                                       interval_s=sync_interval_s)

    async def _sync(self, item: RateLimitItem, key: str, hits: int) -> float:
        assert self._one_trip is not None
        if self.degraded:
            return 0.0
        try:
            return await self._one_trip.add(item, key, hits)
        except Exception:
            logger.warning("rate limit storage failed; deciding per instance for %.0f s", self._retry_s,
                           exc_info=True)
            self._down_until = time.monotonic() + self._retry_s
            raise

    async def aclose(self) -> None:
        """With `local`: send the hits not yet in Redis and stop the background sync."""
        if self._local is not None:
            await self._local.aclose()

    def key(self, conn: HTTPConnection) -> str:
        """The caller's bucket: its verified identity, else its address."""
        return client_key(conn, self.trusted_proxies, identify=self.identify)

    @classmethod
    def from_settings(cls, settings: RateLimitSettings, *, redis_url: SecretStr | str | None = None,
                      identify: Identify | None = None) -> RateLimiter:
        url = settings.storage_url.get_secret_value() if settings.storage_url else None
        if url is None and redis_url is not None:
            raw = redis_url.get_secret_value() if isinstance(redis_url, SecretStr) else redis_url
            url = raw if raw.startswith("async+") else "async+" + raw
        storage: Storage | None = None
        if url:
            # an async+ URL always gives an async storage
            storage = storage_from_string(url, implementation="redispy", socket_timeout=0.5,  # type: ignore[assignment]
                                          socket_connect_timeout=0.5, wrap_exceptions=True)
        return cls(storage=storage, strategy=settings.strategy, default=settings.default,
                   retry_redis_s=settings.retry_redis_s, trusted_proxies=settings.trusted_proxies,
                   enabled=settings.enabled, identify=identify, local=settings.local,
                   sync_interval_s=settings.sync_interval_s)

    @property
    def degraded(self) -> bool:
        """True while counting in memory because Redis failed."""
        return self._primary is not None and time.monotonic() < self._down_until

    async def hit(self, key: str, item: RateLimitItem | None = None, *, cost: int = 1,
                  policy: str = "default") -> Decision:
        item = item or self.default
        if self._local is not None:
            v = self._local.hit(item, key, cost)
            return Decision(allowed=v.allowed, limit=item.amount, remaining=v.remaining, reset_s=v.reset_s,
                            window_s=item.get_expiry(), policy=policy)
        strategy = self._memory if self._primary is None or self.degraded else self._primary
        try:
            if self._one_trip is not None and strategy is self._primary:
                return _decision(item, await self._one_trip.hit(item, key, cost), policy)
            return await self._hit(strategy, item, key, cost, policy)
        except Exception:  # noqa: BLE001 - any storage failure: count in memory for a while
            if strategy is self._memory:
                raise
            logger.warning("rate limit storage failed; counting in memory for %.0f s", self._retry_s,
                           exc_info=True)
            self._down_until = time.monotonic() + self._retry_s
            return await self._hit(self._memory, item, key, cost, policy)

    @staticmethod
    async def _hit(strategy: _Strategy, item: RateLimitItem, key: str, cost: int, policy: str) -> Decision:
        allowed = await strategy.hit(item, key, cost=cost)
        stats = await strategy.get_window_stats(item, key)
        window = item.get_expiry()
        reset = max(0, min(window, math.ceil(stats.reset_time - time.time())))
        return Decision(allowed=allowed, limit=item.amount, remaining=max(0, stats.remaining),
                        reset_s=reset, window_s=window, policy=policy)

    def dependency(self, limit: str | None = None, *, name: str = "route",
                   ) -> Callable[[HTTPConnection], Awaitable[Decision]]:
        """A FastAPI dependency enforcing `limit` (default: the limiter's) per client on one route.

        `name` is the policy name in the RateLimit headers."""
        item = parse(limit) if limit else self.default

        async def enforce(conn: HTTPConnection) -> Decision:
            if not self.enabled:
                return Decision(True, item.amount, item.amount, 0, item.get_expiry(), name)
            key = f"{name}:{conn.url.path}:{self.key(conn)}"
            decision = await self.hit(key, item, policy=name)
            if not decision.allowed:
                raise RateLimitExceeded(decision)
            return decision

        return enforce

    @staticmethod
    def install_handler(app: Any) -> None:
        """Map `RateLimitExceeded` to 429 with Retry-After and RateLimit headers on a FastAPI app."""
        from starlette.responses import JSONResponse

        async def handler(_request: Any, exc: Exception) -> JSONResponse:
            assert isinstance(exc, RateLimitExceeded)
            return JSONResponse({"detail": "rate limit exceeded", "errorCode": "RATE_LIMITED"},
                                status_code=429, headers=exc.decision.headers())

        app.add_exception_handler(RateLimitExceeded, handler)


class RateLimitMiddleware:
    """Pure ASGI middleware: one window per client over every HTTP request except `exempt` paths.

    Normal answers carry the RateLimit headers; a refused one is 429 with Retry-After.
    """

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, exempt: Iterable[str] = ("/healthz", "/readyz"),
                 key_func: Callable[[HTTPConnection], str] | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = tuple(exempt)
        self.key_func = key_func

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limiter.enabled or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        key = self.key_func(conn) if self.key_func else self.limiter.key(conn)
        decision = await self.limiter.hit(key)
        extra = header_bytes(decision)
        if not decision.allowed:
            await refuse(send, extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


@functools.lru_cache(maxsize=1024)
def header_bytes(decision: Decision) -> tuple[tuple[bytes, bytes], ...]:
    """A decision's headers as ASGI header pairs, encoded once per distinct decision."""
    return tuple((k.lower().encode(), v.encode()) for k, v in decision.headers().items())


_REFUSED = b'{"detail":"rate limit exceeded","errorCode":"RATE_LIMITED"}'


async def refuse(send: Send, extra: Iterable[tuple[bytes, bytes]]) -> None:
    """The 429 answer of a plain-ASGI edge, with the decision's headers (Retry-After among them)."""
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(_REFUSED)).encode()), *extra]})
    await send({"type": "http.response.body", "body": _REFUSED})
