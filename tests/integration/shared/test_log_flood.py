"""A Kafka outage does not flood the logs (shared.logging.RepeatFilter), for real: a client process configured
as every service is (tests/integration/shared/log_flood_client.py) runs against a private broker, which is
stopped for 8 s and started again. aiokafka logs each failed connect and metadata refresh; without the filter
that was 10-30 lines a second per client (a service's log held 11,111 "Unable connect to node" lines)."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
import uuid

from tests.faults import ROOT, PrivateKafka

OUTAGE_S = 8.0


def _kinds(lines: list[dict[str, object]]) -> collections.Counter[tuple[str, str, str]]:
    """How often each line was logged, word for word."""
    return collections.Counter((str(x["logger"]), str(x["level"]), str(x["msg"])) for x in lines)


def test_a_kafka_outage_logs_each_line_a_few_times_not_per_retry(private_kafka: PrivateKafka) -> None:
    topic = f"flood-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    client = subprocess.Popen([sys.executable, "-m", "tests.integration.shared.log_flood_client",
                               private_kafka.bootstrap, topic], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        time.sleep(2)
        private_kafka.stop()
        time.sleep(OUTAGE_S)
        private_kafka.start()
        time.sleep(3)
    finally:
        client.terminate()
        _, err = client.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    kafka = [x for x in lines if str(x["logger"]).startswith("aiokafka") and x["level"] in ("warning", "error")]
    assert kafka, f"the outage logged nothing from aiokafka: {err[-2000:]}"
    kinds = _kinds(kafka)
    assert max(kinds.values()) <= 3, f"repeats were logged line by line: {kinds.most_common(5)}"
    # the outage itself is still in the log
    assert any("Unable connect to node" in str(x["msg"]) for x in kafka), kinds
