"""The app side of recovery: obey `recovery.commands` addressed to this service (or instance).

    listener = CommandListener(service="demo", instance="demo-blue", kafka=settings.kafka,
                               pool=db, breakers=registry)
    async with listener.running():
        ...

- RestartConnectionPool -> `pool.restart()` (close and reopen the asyncpg pool)
- OpenCircuitBreaker    -> force the named breaker open for `duration_seconds`, shared via Redis
- RestartProcess        -> SIGTERM to itself after the offset is committed: uvicorn drains,
                           the process exits 0 and supervisord (autorestart) starts a fresh one.
                           Without `instance` it is for every instance, and with a `restart_gate`
                           they take turns: one restarts, the next waits until it is back (its new
                           process releases the turn when its listener runs) or the turn expires
- DisableNewFeatures    -> not for apps (the flags service obeys it); ignored here

Every instance reads every command (its own consumer group, from the latest offset, so a
restarted process does not replay the command that restarted it); commands older than
`max_age_s` are ignored for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from shared.events import (
    Command, DisableNewFeatures, OpenCircuitBreaker, RestartConnectionPool, RestartProcess, utcnow,
)
from shared.kafka import EventConsumer
from shared.settings import KafkaSettings
from shared.topics import RECOVERY_COMMANDS

__all__ = ["CommandListener", "CommandHandlers", "Restartable", "BreakerOpener", "RestartGate", "RedisRestartGate",
           "LocalRestartGate"]

log = logging.getLogger(__name__)


class Restartable(Protocol):
    async def restart(self) -> None: ...


class BreakerOpener(Protocol):
    async def force_open(self, name: str, duration_s: float, *, reason: str) -> bool: ...


class RestartGate(Protocol):
    """One restart at a time per service: `acquire` takes the turn for `ttl_s` (True when it is, or already
    was, this instance's); `release` gives it back (only the holder's release counts)."""

    async def acquire(self, *, instance: str, ttl_s: float) -> bool: ...
    async def release(self, *, instance: str) -> None: ...


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisRestartGate:
    """The turn is a Redis key with a TTL, shared by every instance of `service` (`redis.asyncio` client)."""

    def __init__(self, redis: Any, *, service: str) -> None:
        self.redis = redis
        self.key = f"safeguard:restart-turn:{service}"

    async def acquire(self, *, instance: str, ttl_s: float) -> bool:
        if await self.redis.set(self.key, instance, nx=True, px=int(ttl_s * 1000)):
            return True
        holder = await self.redis.get(self.key)
        return bool(holder is not None and (holder.decode() if isinstance(holder, bytes) else holder) == instance)

    async def release(self, *, instance: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, instance)


class LocalRestartGate:
    """The same in memory, for instances in one process (tests) and as the reference behaviour."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.holder: tuple[str, float] | None = None

    async def acquire(self, *, instance: str, ttl_s: float) -> bool:
        if self.holder is None or self.holder[0] == instance or self.holder[1] <= self.clock():
            self.holder = (instance, self.clock() + ttl_s)
            return True
        return False

    async def release(self, *, instance: str) -> None:
        if self.holder is not None and self.holder[0] == instance:
            self.holder = None


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class CommandHandlers:
    """What each command does in this process; the core of the listener, testable without Kafka."""

    service: str
    instance: str
    pools: dict[str, Restartable] = field(default_factory=dict)
    breakers: BreakerOpener | None = None
    exit_process: Callable[[], None] = _sigterm_self
    exit_delay_s: float = 0.5
    max_age_s: float = 120.0
    restart_gate: RestartGate | None = None
    turn_s: float = 60.0
    max_wait_s: float = 300.0
    poll_s: float = 1.0
    done: list[str] = field(default_factory=list)
    _waiting: asyncio.Task[None] | None = field(default=None, repr=False)

    def for_me(self, cmd: Command) -> bool:
        if cmd.service != self.service or (cmd.instance is not None and cmd.instance != self.instance):
            return False
        if utcnow() - cmd.time > timedelta(seconds=self.max_age_s):
            log.warning("ignoring stale command %s from %s", type(cmd).__name__, cmd.time.isoformat())
            return False
        return True

    async def restart_connection_pool(self, cmd: RestartConnectionPool) -> None:
        if not self.for_me(cmd):
            return
        pool = self.pools.get(cmd.pool)
        if pool is None:
            log.warning("RestartConnectionPool for unknown pool %r", cmd.pool)
            return
        await pool.restart()
        self.done.append(f"restart_connection_pool:{cmd.pool}")
        log.info("connection pool %s restarted (%s)", cmd.pool, cmd.reason)

    async def open_circuit_breaker(self, cmd: OpenCircuitBreaker) -> None:
        if not self.for_me(cmd) or self.breakers is None:
            return
        reason = f"recovery command: {cmd.reason}" if cmd.reason else "recovery command"
        if await self.breakers.force_open(cmd.breaker, cmd.duration_seconds, reason=reason):
            self.done.append(f"open_circuit_breaker:{cmd.breaker}")
        else:
            log.warning("OpenCircuitBreaker for unknown breaker %r", cmd.breaker)

    async def restart_process(self, cmd: RestartProcess) -> None:
        if not self.for_me(cmd):
            return
        if cmd.instance is None and self.restart_gate is not None:
            if self._waiting is None or self._waiting.done():  # a second broadcast while waiting: one restart
                self._waiting = asyncio.create_task(self._restart_in_turn(cmd), name="restart-turn")
            return
        self._exit_soon(cmd)

    async def back_up(self) -> None:
        """This process is serving again: give the restart turn to the next instance (if it was ours)."""
        if self.restart_gate is not None:
            try:
                await self.restart_gate.release(instance=self.instance)
            except Exception:  # noqa: BLE001 - the turn then expires after turn_s
                log.warning("could not release the restart turn", exc_info=True)

    def stop_waiting(self) -> None:
        """The process is going anyway: stop waiting for a restart turn."""
        if self._waiting is not None:
            self._waiting.cancel()

    async def _restart_in_turn(self, cmd: RestartProcess) -> None:
        assert self.restart_gate is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while loop.time() < deadline:
            try:
                if await self.restart_gate.acquire(instance=self.instance, ttl_s=self.turn_s):
                    break
            except Exception:  # noqa: BLE001 - keep waiting; after max_wait_s the restart goes ahead anyway
                log.warning("restart turn unavailable", exc_info=True)
            await asyncio.sleep(self.poll_s)
        else:
            log.warning("no restart turn within %.0fs: restarting anyway", self.max_wait_s)
        self._exit_soon(cmd)

    def _exit_soon(self, cmd: RestartProcess) -> None:
        self.done.append("restart_process")
        log.warning("restarting process on command (%s)", cmd.reason)
        # Later, so the consumer commits this offset before the process goes.
        asyncio.get_running_loop().call_later(self.exit_delay_s, self.exit_process)

    async def ignore(self, cmd: Command) -> None:
        return None

    def handlers(self) -> dict[type[Any], Callable[[Any], Any]]:
        return {
            RestartConnectionPool: self.restart_connection_pool,
            OpenCircuitBreaker: self.open_circuit_breaker,
            RestartProcess: self.restart_process,
            DisableNewFeatures: self.ignore,
        }


class CommandListener:
    """Consumes `recovery.commands` in a per-instance group and runs `CommandHandlers`."""

    def __init__(self, *, handlers: CommandHandlers, kafka: KafkaSettings) -> None:
        self.commands = handlers
        self.kafka = kafka
        self.consumer = EventConsumer(
            topics=[kafka.topic_prefix + RECOVERY_COMMANDS],
            group_id=f"{handlers.service}.{handlers.instance}.commands",
            handlers=handlers.handlers(), settings=kafka, auto_offset_reset="latest",
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CommandListener]:
        async with self.consumer.running():
            await self.commands.back_up()
            try:
                yield self
            finally:
                self.commands.stop_waiting()
