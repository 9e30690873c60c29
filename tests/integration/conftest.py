from __future__ import annotations

import pytest

from shared.testing.kafka import wait_for_kafka
from tests.conftest import kafka_used


@pytest.fixture(scope="session", autouse=True)
async def _kafka_answers(kafka_bootstrap: str) -> None:
    kafka_used()
    try:
        await wait_for_kafka(kafka_bootstrap)
    except RuntimeError as exc:
        pytest.fail(str(exc))
