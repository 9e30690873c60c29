"""One flags service per test session on a real port (real Postgres schema, Redis prefix, Kafka prefix),
loaded with flagd's testbed flags. Shared by the conformance and schemathesis tests (sync and async)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.flags.app import create_app
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, ThreadServer, drop, flags_settings

CONFORMANCE = Path(os.environ.get("SAFEGUARD_CONFORMANCE_DIR", Path(__file__).parents[3] / "shared" / "conformance"))
if not CONFORMANCE.exists():
    CONFORMANCE = Path("/work/shared/conformance")


def load(name: str) -> Any:
    return json.loads((CONFORMANCE / name).read_text())


@dataclass
class Server:
    url: str
    settings: Any


@pytest.fixture(scope="session")
def flags_server(kafka_bootstrap: str, postgres_dsn: str, redis_url: str) -> Iterator[Server]:
    unique = "c" + uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{unique}.")
    settings = flags_settings(unique, kafka, postgres_dsn, redis_url)
    server = ThreadServer(create_app(settings)).start()
    r = httpx.post(server.url + "/api/flags/_import?strict=false&reason=flagd%20testbed", headers=ADMIN,
                   json=load("flagd_testbed_flags.json"), timeout=60)
    assert r.status_code == 200, r.text
    try:
        yield Server(server.url, settings)
    finally:
        server.stop()
        asyncio.run(drop(settings, redis_url))
