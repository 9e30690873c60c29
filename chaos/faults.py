"""The faults of `make chaos`, in the order they run, and how each is inflicted and undone."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from chaos.stack import Stack, StackError

__all__ = ["Fault", "FAULTS", "FLAGS_MARKED_DOWN_S", "select", "inflict"]

Action = Literal["kill9", "restart", "stop", "pause"]


@dataclass(frozen=True)
class Fault:
    slug: str
    title: str
    action: Action
    program: str
    expect: tuple[tuple[str, str], ...] = ()  # (service, trigger) that must fire and clear once

    @property
    def timed(self) -> bool:
        return self.action in ("stop", "pause")


FAULTS: tuple[Fault, ...] = (
    *(Fault(f"kill-{p}", f"kill -9 {p}", "kill9", p) for p in ("flags", "health", "sla", "recovery", "notifier", "demo-blue")),
    Fault("kafka-restart", "restart Kafka", "restart", "kafka"),
    Fault("postgres-stop", "stop Postgres", "stop", "postgres", expect=(("demo", "db_connection_lost"),)),
    Fault("redis-stop", "stop Redis", "stop", "redis"),
    Fault("kafka-sigstop", "SIGSTOP Kafka", "pause", "kafka"),
    Fault("flags-sigstop", "SIGSTOP flags", "pause", "flags"),
    Fault("sla-sigstop", "SIGSTOP sla", "pause", "sla"),
)
# A hung flags instance (SIGSTOP) still accepts connections: HAProxy takes it out, and ends the streams it
# carried, after 2 failed `/readyz` checks (stack/haproxy.cfg.in: the next check within `inter` 1 s, each
# waiting up to 1 s, the second `fastinter` 250 ms later). Until then a kill sent to it, and the streams on
# it, wait: for that fault the kill's deadlines count from then at the latest.
FLAGS_MARKED_DOWN_S = 1.0 + 1.0 + 0.25 + 1.0


def select(names: list[str] | None) -> list[Fault]:
    if not names:
        return list(FAULTS)
    known = {f.slug: f for f in FAULTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


async def inflict(fault: Fault, stack: Stack, *, seconds: float, injected: asyncio.Event
                  ) -> tuple[float, float, float | None]:
    """Do the fault (`injected` is set once it is in place) and undo it.
    Returns (started, restored, seconds until the program ran again)."""
    if fault.action == "kill9":
        pid = await stack.pid(fault.program)
        started = time.time()
        await stack.kill9(fault.program, pid=pid)
        injected.set()
        back = await stack.wait_restarted(fault.program, old_pid=pid, timeout=60)
        if back is None:
            raise StackError(f"supervisord did not restart {fault.program} within 60 s")
        return started, time.time(), back
    started = time.time()
    if fault.action == "restart":
        await stack.stop(fault.program)
        injected.set()
        await stack.start(fault.program)
        return started, time.time(), time.time() - started
    pid = await stack.pid(fault.program)
    await (stack.stop(fault.program) if fault.action == "stop" else stack.pause(fault.program, pid=pid))
    injected.set()
    try:
        await asyncio.sleep(seconds)
    finally:
        await (stack.start(fault.program) if fault.action == "stop" else stack.resume(fault.program))
    return started, time.time(), time.time() - started
