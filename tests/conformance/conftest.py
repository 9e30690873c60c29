"""One flags service per test session on a real port (real Postgres schema, Redis prefix, Kafka prefix),
loaded with flagd's testbed flags. Shared by the conformance and schemathesis tests (sync and async)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.flags.app import create_app
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, drop, flags_settings

CONFORMANCE = Path(os.environ.get("SAFEGUARD_CONFORMANCE_DIR", Path(__file__).parents[3] / "shared" / "conformance"))
if not CONFORMANCE.exists():
    CONFORMANCE = Path("/work/shared/conformance")


def load(name: str) -> Any:
    return json.loads((CONFORMANCE / name).read_text())


@dataclass
class Server:
    url: str
    settings: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def flags_server(kafka_bootstrap: str, postgres_dsn: str, redis_url: str) -> Iterator[Server]:
    unique = "c" + uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{unique}.")
    settings = flags_settings(unique, kafka, postgres_dsn, redis_url)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the flags service did not start (Postgres/Redis up? `make up`)")
        time.sleep(0.2)
    r = httpx.post(url + "/api/flags/_import?strict=false&reason=flagd%20testbed", headers=ADMIN,
                   json=load("flagd_testbed_flags.json"), timeout=60)
    assert r.status_code == 200, r.text
    try:
        yield Server(url, settings)
    finally:
        server.should_exit = True
        thread.join(15)
        asyncio.run(drop(settings, redis_url))
