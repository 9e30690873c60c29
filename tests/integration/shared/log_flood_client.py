"""A Kafka client process as every service runs one, for test_log_flood.py: `shared.logging` configured as the
services configure it (JSON on stderr), a producer sending one record a second and a consumer in a group.

    python -m tests.integration.shared.log_flood_client BOOTSTRAP TOPIC   # prints "ready", runs until killed
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.logging import configure_logging
from shared.testing.kafka import client_kwargs


async def main(bootstrap: str, topic: str) -> None:
    configure_logging("flood", level="INFO")
    producer = AIOKafkaProducer(**client_kwargs(bootstrap))
    consumer = AIOKafkaConsumer(topic, group_id=f"{topic}-group", **client_kwargs(bootstrap))
    await producer.start()
    await consumer.start()
    try:
        print("ready", flush=True)
        while True:
            await producer.send(topic, b"x")  # queued; delivered once the broker is back
            await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
