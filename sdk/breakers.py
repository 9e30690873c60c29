"""Circuit breakers for a protected app: the registry, an asyncpg pool and a Redis client behind them.

The state machine and the Redis-shared OPEN state are `sdk.circuit`; this module binds
them to the app's service/instance, publishes every state change as a
`CircuitBreakerStateChanged`, and wraps the two clients the runbook names:

    registry = BreakerRegistry(service="demo", instance="demo-blue", shared=RedisBreakerState(r, service="demo"))
    db = GuardedPool(dsn=..., breaker=registry.breaker("postgres", BreakerConfig.for_database()))
    cache = GuardedRedis(r, breaker=registry.breaker("redis", BreakerConfig.for_cache()))
    async with registry.running(publisher), db:
        rows = await db.fetch("SELECT ...")          # CallNotPermittedError while open
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sdk.dependencies import CallTimer
from sdk.circuit import (
    BreakerConfig, CallNotPermittedError, CircuitBreaker, SharedBreakerState, Transition,
)
from shared.events import CircuitBreakerStateChanged, DependencyStats, PoolStats
from shared.kafka import Publisher
from shared.tasks import background

__all__ = ["BreakerRegistry", "GuardedPool", "GuardedRedis", "CallNotPermittedError", "BreakerConfig"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class _TimedBreaker(CircuitBreaker):
    """A breaker that also times every call it lets through (`CallTimer`), refused calls excluded."""

    timer: CallTimer

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        async def timed(*a: Any, **kw: Any) -> T:
            token = self.timer.start()
            try:
                return await fn(*a, **kw)
            finally:
                self.timer.finish(token)
        return await super().call(timed, *args, **kwargs)


class BreakerRegistry:
    """Every breaker of one process, by name; publishes their transitions."""

    def __init__(self, *, service: str, instance: str, shared: SharedBreakerState | None = None,
                 clock: Callable[[], float] = time.monotonic, sync_interval_s: float = 0.5,
                 latency_window_s: float = 30.0) -> None:
        self.service = service
        self.latency_window_s = latency_window_s
        self.instance = instance
        self.shared = shared
        self.clock = clock
        self.sync_interval_s = sync_interval_s
        self.breakers: dict[str, CircuitBreaker] = {}
        self._queue: asyncio.Queue[CircuitBreakerStateChanged] = asyncio.Queue(maxsize=1000)

    def breaker(self, name: str, config: BreakerConfig | None = None) -> CircuitBreaker:
        if name not in self.breakers:
            cb = _TimedBreaker(
                name, config, clock=self.clock, shared=self.shared, instance=self.instance,
                sync_interval_s=self.sync_interval_s, on_transition=self._on_transition,
            )
            cb.timer = CallTimer(name, slow_threshold_s=cb.config.slow_call_duration_threshold_s,
                                 window_s=self.latency_window_s, clock=self.clock)
            self.breakers[name] = cb
        return self.breakers[name]

    def states(self) -> dict[str, str]:
        return {name: cb.state.value for name, cb in self.breakers.items()}

    def dependencies(self) -> list[DependencyStats]:
        """Latency and slow-call rate of each breaker's calls (ProcessStatsReported.dependencies)."""
        return [cb.timer.stats() for cb in self.breakers.values() if isinstance(cb, _TimedBreaker)]

    async def force_open(self, name: str, duration_s: float, *, reason: str) -> bool:
        """Open `name` for `duration_s` here and, through Redis, in every instance. False if unknown."""
        cb = self.breakers.get(name)
        if cb is None:
            return False
        cb.force_open(duration_s, reason=reason)
        await cb.sync(force=True)
        return True

    def _on_transition(self, t: Transition) -> None:
        snap = t.snapshot
        event = CircuitBreakerStateChanged(
            service=self.service, instance=self.instance, breaker=t.breaker, from_state=t.from_state.value,
            to_state=t.to_state.value, reason=t.reason[:500], shared=t.shared,
            failure_rate=snap.failure_rate if snap else -1.0, slow_call_rate=snap.slow_call_rate if snap else -1.0,
            open_for_seconds=t.open_for_s,
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("breaker event queue full; dropped %s -> %s", t.breaker, t.to_state.value)

    @asynccontextmanager
    async def running(self, publisher: Publisher) -> AsyncIterator[BreakerRegistry]:
        """Publish transitions in the background while the app runs."""
        try:
            async with background(self._publish_forever(publisher), name="breaker-events"):
                yield self
        finally:
            while not self._queue.empty():
                await self._publish_one(publisher, self._queue.get_nowait())

    async def _publish_forever(self, publisher: Publisher) -> None:
        while True:
            await self._publish_one(publisher, await self._queue.get())

    @staticmethod
    async def _publish_one(publisher: Publisher, event: CircuitBreakerStateChanged) -> None:
        try:
            await publisher.publish(event)
        except Exception:  # noqa: BLE001 - telemetry must not take the app down
            log.exception("could not publish breaker state change")


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError)


def _connection_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (*_CONNECTION_ERRORS, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError)


class GuardedPool:
    """An asyncpg pool whose queries go through a breaker; restartable (RestartConnectionPool).

    `connected` turns false on a connection-level error and true again on the next success;
    `stats()` reports it in ProcessStatsReported so the SLA processor can fire db_connection_lost.
    """

    def __init__(self, *, dsn: str, breaker: CircuitBreaker, name: str = "postgres", min_size: int = 1,
                 max_size: int = 10, command_timeout_s: float = 5.0,
                 create_pool: Callable[..., Awaitable[Any]] | None = None) -> None:
        self._dsn = dsn
        self.breaker = breaker
        self.name = name
        self.min_size = min_size
        self.max_size = max_size
        self.command_timeout_s = command_timeout_s
        self._create = create_pool
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._restart_lock = asyncio.Lock()
        self.connected = False
        self.held_down = False  # fault injection: stay disconnected until restart()
        self.delay_s = 0.0  # fault injection: every call waits this long first (a slow database)
        self.restarts = 0

    async def __aenter__(self) -> GuardedPool:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the pool; on failure stay disconnected (queries fail fast, the breaker counts them)."""
        async with self._lock:
            if self._pool is not None:
                return
            try:
                self._pool = await self._connect()
                self.connected = True
            except Exception as exc:  # noqa: BLE001 - an app must start with its database down
                self.connected = False
                log.warning("postgres pool could not open: %s", type(exc).__name__)

    async def _connect(self) -> Any:
        if self._create is not None:
            return await self._create()
        import asyncpg

        return await asyncpg.create_pool(self._dsn, min_size=self.min_size, max_size=self.max_size,
                                         command_timeout=self.command_timeout_s, timeout=self.command_timeout_s)

    async def close(self) -> None:
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:  # noqa: BLE001 - a stuck close is terminated
                pool.terminate()
        self.connected = False

    async def drop(self) -> None:
        """Fault injection: terminate every connection and stay down until `restart()`."""
        self.held_down = True
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
        self.connected = False

    async def restart(self) -> None:
        """Close and reopen (the runbook's 'restart connection pool'). Concurrent restarts (a recovery
        command and an operator, say) run one after the other, so the last one leaves the pool open."""
        async with self._restart_lock:
            self.held_down = False
            await self.close()
            await self.open()
            self.restarts += 1

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._pool is None and not self.held_down:
            await self.open()
        pool = self._pool
        if pool is None:
            raise ConnectionError(f"{self.name} pool is not connected")
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        try:
            result = await getattr(pool, method)(*args, **kwargs)
        except _connection_errors():
            self.connected = False
            raise
        self.connected = True
        return result

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
        result: list[Any] = await self.breaker.call(self._run, "fetch", query, *args, **kwargs)
        return result

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self.breaker.call(self._run, "fetchrow", query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self.breaker.call(self._run, "fetchval", query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        result: str = await self.breaker.call(self._run, "execute", query, *args, **kwargs)
        return result

    def stats(self) -> PoolStats:
        pool = self._pool
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        return PoolStats(name=self.name, size=size, idle=idle, max_size=self.max_size,
                         connected=self.connected and pool is not None)


class GuardedRedis:
    """A redis.asyncio client whose commands go through a breaker: `await cache.get("k")`."""

    def __init__(self, client: Any, *, breaker: CircuitBreaker) -> None:
        self.client = client
        self.breaker = breaker

    async def execute(self, command: str, *args: Any, **kwargs: Any) -> Any:
        return await self.breaker.call(getattr(self.client, command), *args, **kwargs)

    def __getattr__(self, command: str) -> Callable[..., Awaitable[Any]]:
        if command.startswith("_"):
            raise AttributeError(command)

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            return await self.execute(command, *args, **kwargs)

        return guarded
