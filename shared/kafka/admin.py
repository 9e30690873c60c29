"""An `AIOKafkaAdminClient` held for a block: started (retried while the broker refuses connections, when asked)
and closed however the block ends. The one way admin clients are opened (topics, ACLs, changelog settings,
benches, tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

__all__ = ["kafka_admin"]


@asynccontextmanager
async def kafka_admin(client_kwargs: Mapping[str, Any], *, request_timeout_ms: int = 10000,
                      start_within_s: float = 0.0) -> AsyncIterator[AIOKafkaAdminClient]:
    """`client_kwargs`: `KafkaSettings.client_kwargs()` (address and login). `start_within_s`: keep trying to
    connect for that long while the broker refuses (a broker still starting); 0: one try."""
    admin = AIOKafkaAdminClient(**client_kwargs, request_timeout_ms=request_timeout_ms)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + start_within_s
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if loop.time() >= deadline:
                await admin.close()
                raise
            await asyncio.sleep(0.5)
    try:
        yield admin
    finally:
        await admin.close()
