"""Fixtures shared by every test folder.

Integration fixtures read `KAFKA_BOOTSTRAP_SERVERS`, `POSTGRES_DSN` and `REDIS_URL` (set by
`make test`, which starts the native stack). A service that does not answer fails the test:
never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.settings import KafkaSettings
from shared.telemetry import setup_telemetry

pytest_plugins = ["tests.faults"]

_SPANS = InMemorySpanExporter()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Every finished span of the test process (a SimpleSpanProcessor feeds it)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    setup_telemetry("tests")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(_SPANS))
    return _SPANS


_UNIQUE: set[str] = set()  # every test's unique id: topics that contain one are deleted when the run ends
_USED_KAFKA: list[bool] = []


def kafka_used() -> None:
    """This run talks to Kafka: delete its topics at the end."""
    _USED_KAFKA.append(True)


@pytest.fixture
def unique() -> str:
    """A short unique id for topic prefixes, group ids and keys."""
    mark = uuid.uuid4().hex[:10]
    _UNIQUE.add(mark)
    return mark


@pytest.fixture(scope="session", autouse=True)
def _topics_deleted_at_the_end(kafka_bootstrap: str) -> Iterator[None]:
    """The run's topics go when it ends (a long-lived dev broker kept every run's: 16,000 partitions ran its 512 MB
    heap out). Only tests that asked for Kafka made any; the broker being gone by then is only warned of."""
    yield
    if not _USED_KAFKA:
        return
    import asyncio
    import warnings

    from shared.testing.kafka import delete_topics

    try:
        asyncio.run(asyncio.wait_for(delete_topics(kafka_bootstrap, lambda t: any(m in t for m in _UNIQUE)), 120))
    except Exception as exc:  # noqa: BLE001 (clean-up only: the tests' results stand)
        warnings.warn(f"the run's Kafka topics were not deleted: {exc!r}", stacklevel=1)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    return os.environ.get("POSTGRES_DSN", "postgresql://safeguard@127.0.0.1:5432/safeguard")


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, unique: str) -> KafkaSettings:
    """Kafka settings with a per-test topic prefix, so tests never see each other's messages."""
    kafka_used()
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{unique}.",
                         consumer_retry_backoff_s=0.01)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[object]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis at {redis_url} does not answer ({exc}); run `make up` or set REDIS_URL")
    yield client
    await client.aclose()


@pytest.fixture
async def schema(postgres_dsn: str, unique: str) -> AsyncIterator[str]:
    """A Postgres schema of the test's own (`t<unique>`), dropped with everything in it afterwards."""
    import asyncpg

    name = f"t{unique}"
    yield name
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `restarts_stack` (they stop and start the native stack) run after all the others."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_stack") is not None)
