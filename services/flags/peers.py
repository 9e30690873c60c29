"""Inbound edge: the changes other flags instances make, through Redis pub/sub (`<prefix>changes`).

Every instance publishes each change it makes (kill, enable, rollout, delete, a kill while Postgres
is down...) with its Redis copy (`FlagCache.put`); every other instance applies it to its snapshot
and pushes it to its own SSE and gRPC sync subscribers. Pub/sub is at most once, so:
- after every (re)subscribe the instance reloads (Postgres, else the Redis copy): what was
  published while it was not listening is caught up;
- a message whose `prev` revision the receiver does not know yet means one was missed: reload;
- the refresh loop (`FLAGS_REFRESH_INTERVAL_S`) still compares the shared revision as a last resort.
Redis hung (SIGSTOP) loses nothing: nobody can publish meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

if TYPE_CHECKING:
    from services.flags.service import FlagService

__all__ = ["follow_peers"]

logger = logging.getLogger(__name__)


async def follow_peers(svc: FlagService, *, url: str, channel: str, stop: asyncio.Event,
                       max_backoff_s: float = 5.0) -> None:
    """Apply the other instances' changes until `stop` is set (or cancelled); reconnect and catch up after
    any error. `stop` as well as a cancel: redis-py can swallow a cancel that lands in one of its timeouts."""
    client = aioredis.from_url(url, socket_connect_timeout=0.5, socket_keepalive=True)
    backoff = 0.1
    try:
        while not stop.is_set():
            try:
                await _listen(svc, client, channel, stop)
                backoff = 0.1
            except Exception as exc:  # noqa: BLE001 - Redis away or the connection dropped
                logger.warning("peer changes: not subscribed (%r); retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
            backoff = min(max_backoff_s, backoff * 2)
    finally:
        await client.aclose()


async def _listen(svc: FlagService, client: aioredis.Redis, channel: str, stop: asyncio.Event) -> None:
    async with client.pubsub(ignore_subscribe_messages=True) as ps:
        await ps.subscribe(channel)
        await svc.load()  # whatever changed while we were not subscribed
        svc.peers_subscribed = True
        try:
            while not stop.is_set():
                msg = await ps.get_message(timeout=0.5)
                if msg is not None and msg.get("type") == "message":
                    if svc.apply_peer(msg["data"]):
                        await svc.load()
        finally:
            svc.peers_subscribed = False
