"""The executor port, the result of a restart, and the one-at-a-time loop every executor shares."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Executor", "ExecutorError", "Restarted", "Target", "answers", "restart_in_turn"]


class ExecutorError(RuntimeError):
    """The restart could not be done or its process did not come back; the message says which and why."""


class Target(BaseModel):
    """One instance of a service, as each executor finds it.

    `instance`: the name the SDK reports (ProcessStatsReported.instance, e.g. `demo-blue`); `program`: the
    supervisord program (`safeguard:demo-blue`), the compose service (`demo-blue`) or the pods' label
    selector (`app=demo,color=blue`); `health_url`: where the new process must answer 200."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    instance: str = Field(min_length=1, max_length=200)
    program: str = Field(min_length=1, max_length=300)
    health_url: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class Restarted:
    """One instance restarted: the process before and after (a PID, a container's PID, a pod's name), and
    how long until the new one answered."""

    instance: str
    before: str
    after: str
    answered_s: float

    def describe(self) -> str:
        return f"{self.instance}: {self.before} -> {self.after}, answers after {self.answered_s:.1f}s"


class Executor(Protocol):
    name: str

    def describe(self, target: Target) -> str: ...

    async def restart(self, target: Target) -> Restarted: ...


async def answers(url: str | None, *, timeout_s: float, poll_s: float = 0.1) -> bool:
    """True once `url` answers 200 (always true without a URL: the executor's own check is all there is)."""
    if url is None:
        return True
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            try:
                if (await http.get(url)).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass  # not up yet
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(poll_s)


async def restart_in_turn(restart: Callable[[Target], Awaitable[Restarted]],
                          targets: Sequence[Target]) -> list[Restarted]:
    """Never all at once: each instance is restarted and answers before the next one goes; the first that
    does not come back stops the round (the others keep serving)."""
    return [await restart(t) for t in targets]
