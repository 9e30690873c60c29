"""Outbound edge: the Redis copy of every flag, so a restart while Postgres is down still serves flags,
and the `<prefix>changes` channel through which every change reaches the other flags instances."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from services.flags.models import FlagRecord
from services.flags.ports import peer_message

__all__ = ["FlagCache", "open_redis", "peer_message"]


@asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=5)
    try:
        yield client
    finally:
        await client.aclose()


class FlagCache:
    """`<prefix>flags` hash (key -> record JSON), `<prefix>revision`, and the `<prefix>changes` channel."""

    CHANNEL = "changes"  # after the prefix: the channel every instance publishes its changes on

    def __init__(self, client: aioredis.Redis, *, prefix: str = "safeguard:flags:") -> None:
        self.client = client
        self.hash = prefix + "defs"
        self.rev = prefix + "revision"
        self.channel = prefix + self.CHANNEL
        self.origin = uuid.uuid4().hex  # this instance: it skips its own messages

    async def ping(self) -> None:
        await self.client.ping()

    async def revision(self) -> int:
        raw = await self.client.get(self.rev)
        return int(raw) if raw else 0

    async def put(self, record: FlagRecord | None, key: str, revision: int, *, prev: int = 0) -> None:
        """Copy one change and tell the other instances (PUBLISH), in one round trip."""
        async with self.client.pipeline(transaction=True) as pipe:
            if record is None:
                pipe.hdel(self.hash, key)
            else:
                pipe.hset(self.hash, key, record.model_dump_json())
            pipe.set(self.rev, revision)
            pipe.publish(self.channel, peer_message(origin=self.origin, key=key, record=record,
                                                    revision=revision, prev=prev))
            await pipe.execute()

    async def replace_all(self, records: list[FlagRecord], revision: int) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.hash)
            if records:
                pipe.hset(self.hash, mapping={r.key: r.model_dump_json() for r in records})
            pipe.set(self.rev, revision)
            await pipe.execute()

    async def get(self, key: str) -> FlagRecord | None:
        raw = await self.client.hget(self.hash, key)
        return FlagRecord.model_validate(json.loads(raw)) if raw else None

    async def load_all(self) -> tuple[list[FlagRecord], int]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.hash)
            pipe.get(self.rev)
            raw, rev = await pipe.execute()
        return [FlagRecord.model_validate_json(v) for v in raw.values()], int(rev or 0)
