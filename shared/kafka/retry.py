"""Bounded retries for the steps of a consumer loop: exponential backoff, capped, jittered.

A step that still fails after `attempts` tries raises `RetriesExhausted`; the consumer then
gives up loudly (the process exits so its supervisor restarts it) instead of dying quietly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsumerPolicy", "RetriesExhausted", "backoff_delays", "retry"]

T = TypeVar("T")
OnRetry = Callable[[str, BaseException, int, float], None]


class ConsumerPolicy(BaseSettings):
    """How hard a consumer tries before it gives up, and when /healthz calls it stuck (KAFKA_CONSUMER_*)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_CONSUMER_", extra="ignore")
    attempts: int = Field(default=8, ge=1, description="Tries of one loop step (fetch, DLQ send, commit).")
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    step_timeout_s: float = Field(default=45.0, gt=0, description="One try of fetch, DLQ send or commit.")
    stuck_after_s: float = Field(default=60.0, gt=0, description="No poll or broker answer for this long: stuck.")
    dedupe_attempts: int = Field(default=2, ge=1)
    dedupe_timeout_s: float = Field(default=1.0, gt=0)
    dedupe_rest_s: float = Field(default=5.0, ge=0, description="After a dedupe failure, leave the store alone.")


class RetriesExhausted(Exception):
    """`step` failed `attempts` times in a row; `__cause__` is the last error."""

    def __init__(self, step: str, attempts: int, last: BaseException) -> None:
        super().__init__(f"{step} failed {attempts} times, last: {type(last).__name__}: {last}")
        self.step = step
        self.attempts = attempts
        self.last = last


def backoff_delays(*, initial_s: float, max_s: float, rng: Callable[[float, float], float] = random.uniform,
                   ) -> Iterator[float]:
    """initial, 2x, 4x ... capped at `max_s`, each drawn from its upper half (equal jitter)."""
    ceiling = initial_s
    while True:
        yield rng(ceiling / 2, ceiling)
        ceiling = min(ceiling * 2, max_s)


async def retry(step: str, call: Callable[[], Awaitable[T]], *, attempts: int, initial_s: float, max_s: float,
                timeout_s: float | None = None, on_retry: OnRetry | None = None,
                passthrough: tuple[type[BaseException], ...] = ()) -> T:
    """Await `call()` until it succeeds; each try is cut at `timeout_s`. `passthrough` errors are not retried."""
    delays = backoff_delays(initial_s=initial_s, max_s=max_s)
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.wait_for(call(), timeout_s)
        except passthrough:
            raise
        except Exception as exc:
            if attempt == attempts:
                raise RetriesExhausted(step, attempts, exc) from exc
            delay = next(delays)
            if on_retry is not None:
                on_retry(step, exc, attempt, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - attempts >= 1
