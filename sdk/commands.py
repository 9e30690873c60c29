"""The app side of recovery: obey `recovery.commands` addressed to this service (or instance).

    listener = CommandListener(service="demo", instance="demo-blue", kafka=settings.kafka,
                               pool=db, breakers=registry)
    async with listener.running():
        ...

- RestartConnectionPool -> `pool.restart()` (close and reopen the asyncpg pool)
- OpenCircuitBreaker    -> force the named breaker open for `duration_seconds`, shared via Redis
- RestartProcess        -> SIGTERM to itself after the offset is committed: uvicorn drains,
                           the process exits 0 and supervisord (autorestart) starts a fresh one
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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from shared.events import (
    Command, DisableNewFeatures, OpenCircuitBreaker, RestartConnectionPool, RestartProcess, utcnow,
)
from shared.kafka import EventConsumer
from shared.kafka.acls import SDK_GROUP_PREFIX
from shared.settings import KafkaSettings
from shared.topics import RECOVERY_COMMANDS

__all__ = ["CommandListener", "CommandHandlers", "Restartable", "BreakerOpener"]

log = logging.getLogger(__name__)


class Restartable(Protocol):
    async def restart(self) -> None: ...


class BreakerOpener(Protocol):
    async def force_open(self, name: str, duration_s: float, *, reason: str) -> bool: ...


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
    done: list[str] = field(default_factory=list)

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
            group_id=f"{SDK_GROUP_PREFIX}{handlers.service}.{handlers.instance}.commands",
            handlers=handlers.handlers(), settings=kafka, auto_offset_reset="latest",
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CommandListener]:
        async with self.consumer.running():
            yield self
