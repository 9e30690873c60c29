"""A consumer process for the kill -9 test: handles TriggerFired events and appends each id to a file.

`python -m tests.integration.shared.crash_consumer BOOTSTRAP TOPIC GROUP REDIS_URL NAMESPACE OUT`
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from shared.events import TriggerFired
from shared.kafka import EventConsumer, RedisDedupe
from shared.settings import KafkaSettings


async def main(bootstrap: str, topic: str, group: str, redis_url: str, namespace: str, out: str) -> None:
    client = aioredis.from_url(redis_url)
    with open(out, "a", buffering=1) as log:

        async def handle(event: TriggerFired) -> None:
            await asyncio.sleep(0.001)
            log.write(event.episode_id + "\n")

        consumer = EventConsumer(topics=[topic], group_id=group, handlers={TriggerFired: handle},
                                 settings=KafkaSettings(bootstrap_servers=bootstrap), max_batch=50,
                                 dedupe=RedisDedupe(client, namespace=namespace))
        async with consumer.running():
            await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
