"""`shared.kafka.admin.kafka_admin`: with no broker at the address, one try fails at once and `start_within_s`
keeps trying for that long; either way the error is the connection's (the happy path: every integration test that
creates topics, and `python -m shared.topics create`)."""

from __future__ import annotations

import socket
import time

import pytest
from aiokafka.errors import KafkaConnectionError

from shared.kafka.admin import kafka_admin


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


@pytest.mark.parametrize("within_s", [0.0, 1.5])
async def test_no_broker_is_a_connection_error_after_the_time_given(within_s: float) -> None:
    t0 = time.monotonic()
    with pytest.raises(KafkaConnectionError):
        async with kafka_admin({"bootstrap_servers": f"127.0.0.1:{_closed_port()}"}, start_within_s=within_s):
            pytest.fail("the block must not run without a broker")
    took = time.monotonic() - t0
    assert within_s <= took < within_s + 5, took
