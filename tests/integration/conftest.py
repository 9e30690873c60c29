from __future__ import annotations

import pytest

from shared.testing.kafka import wait_for_kafka


@pytest.fixture(scope="session", autouse=True)
async def _kafka_answers(kafka_bootstrap: str) -> None:
    try:
        await wait_for_kafka(kafka_bootstrap)
    except RuntimeError as exc:
        pytest.fail(str(exc))
