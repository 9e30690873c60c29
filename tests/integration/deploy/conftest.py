from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _kafka_answers() -> None:
    """The deploy tests need only their own private PostgreSQL, not the stack's Kafka."""
