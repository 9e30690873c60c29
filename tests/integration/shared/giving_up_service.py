"""A service shaped like notifier and recovery (FastAPI, `start_service_consumer` in the lifespan, `serve`),
for the test that a consumer which gives up ends its whole process with a non-zero status.

`python -m tests.integration.shared.giving_up_service PORT` with KAFKA_* and REDIS_URL in the environment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from shared.events import TriggerFired
from shared.http import healthz_router, serve
from shared.kafka.consumer import start_service_consumer
from shared.settings import KafkaSettings
from shared.topics import SLA_TRIGGERS


async def ignore(event: TriggerFired) -> None:
    return None


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await start_service_consumer(stack, topics=[SLA_TRIGGERS], group_id="giving-up",
                                         handlers={TriggerFired: ignore}, kafka=KafkaSettings(),
                                         redis_url=os.environ["REDIS_URL"])
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(healthz_router("giving-up"))
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    serve(create_app(), host="127.0.0.1", port=int(sys.argv[1]))
