"""Exposures: how many distinct users saw each flag in the last hour, and how many of them got it on.

Redis HyperLogLogs per flag and minute, `<prefix>exp:<flag>:<minute>:all` and `...:in` (PFADD, expiring
after 65 minutes); the last hour is PFCOUNT over the 60 minute keys (Redis merges them on the fly).
Approximate (Redis's HLL: about 0.81 % standard error), about 12 kB per key at most, no user id stored:
the elements are the SDK's key hashes (sdk/flags/exposure.py).

Recorded without a request waiting on Redis: OFREP evaluations and SDK reports go into an in-process
buffer (`ExposureRecorder`) that a background task flushes every second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, RootModel
from redis.exceptions import RedisError

from shared.flags.evaluator import CompiledFlag, Resolution
from sdk.flags.exposure import is_in, key_hash

__all__ = ["ExposureStore", "ExposureRecorder", "Exposure", "ExposureBatch", "WINDOW_S"]

logger = logging.getLogger(__name__)
WINDOW_S = 3600
_TTL_S = 65 * 60


class Exposure(BaseModel):
    """One SDK report: `key_hash` is sdk.flags.exposure.key_hash(targetingKey); `in`: it got the feature."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    flag: str = Field(min_length=1, max_length=128)
    key_hash: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    in_: bool = Field(alias="in")


class ExposureBatch(RootModel[list[Exposure]]):
    root: list[Exposure] = Field(max_length=10_000)


class ExposureStore:
    """The HyperLogLogs in Redis."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.client, self.prefix, self.clock = client, prefix + "exp:", clock

    def key(self, flag: str, minute: int, side: str) -> str:
        return f"{self.prefix}{flag}:{minute}:{side}"

    async def add(self, seen: Mapping[str, tuple[set[str], set[str]]]) -> None:
        """`seen`: flag -> (every key hash, the hashes that got it on), all in the current minute."""
        minute = int(self.clock() // 60)
        async with self.client.pipeline(transaction=False) as pipe:
            for flag, (everyone, got_in) in seen.items():
                for side, hashes in (("all", everyone), ("in", got_in)):
                    if hashes:
                        pipe.pfadd(self.key(flag, minute, side), *hashes)
                        pipe.expire(self.key(flag, minute, side), _TTL_S)
            await pipe.execute()

    async def last_hour(self, flag: str) -> dict[str, Any]:
        now = int(self.clock() // 60)
        minutes = range(now - WINDOW_S // 60 + 1, now + 1)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.pfcount(*[self.key(flag, m, "all") for m in minutes])
            pipe.pfcount(*[self.key(flag, m, "in") for m in minutes])
            users, got_in = await pipe.execute()
        return {"users_last_hour": int(users), "in": min(int(got_in), int(users)), "window_s": WINDOW_S,
                "approximate": True}


class ExposureRecorder:
    """Buffers exposures in process (bounded: past `max_entries` they are dropped and counted) and flushes
    them to the store every `interval_s`. A failed flush is dropped and counted: the figure is a hint."""

    def __init__(self, store: ExposureStore, *, max_entries: int = 200_000, interval_s: float = 1.0) -> None:
        self.store, self.max_entries, self.interval_s = store, max_entries, interval_s
        self.dropped = 0
        self.failed = 0
        self._seen: dict[str, tuple[set[str], set[str]]] = {}
        self._size = 0

    def add(self, flag: str, hashed: str, in_: bool) -> None:
        if self._size >= self.max_entries:
            self.dropped += 1
            return
        everyone, got_in = self._seen.get(flag) or self._seen.setdefault(flag, (set(), set()))
        if hashed not in everyone:
            everyone.add(hashed)
            self._size += 1
        if in_ and hashed not in got_in:
            got_in.add(hashed)
            self._size += 1

    def saw(self, *, targeting_key: Any, found: Iterable[tuple[CompiledFlag, Resolution]]) -> None:
        """Evaluations for one context (OFREP): counted when it has a targeting key (hashed once) and each
        served a variant."""
        if not isinstance(targeting_key, str) or not targeting_key:
            return
        hashed = key_hash(targeting_key)
        for flag, r in found:
            if r.error_code is None and not r.is_code_default:
                self.add(flag.key, hashed, is_in(flag, r))

    async def flush(self) -> None:
        seen, self._seen, self._size = self._seen, {}, 0
        if not seen:
            return
        try:
            await self.store.add(seen)
        except (RedisError, OSError):
            self.failed += sum(len(a) for a, _ in seen.values())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - one bad round must not end recording
                logger.warning("exposure flush failed", exc_info=True)
