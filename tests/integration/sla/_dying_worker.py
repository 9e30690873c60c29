"""An SLA worker for test_sla_changelog.py, in a process of its own so that the test can kill -9 it.

`python -m tests.integration.sla._dying_worker <bootstrap> <topic prefix> <app id> <flag file>`: Kafka's
credentials from the environment, as the tests'. It prints `counted N` as its request count grows; once the flag
file exists, its producer stops handing queued messages (the changelog writes) to Kafka: they die with the process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from services.sla.app import create_app
from services.sla.settings import SlaSettings
from shared import topics
from shared.settings import KafkaSettings


async def main(bootstrap: str, prefix: str, app_id: str, flag: Path) -> None:
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, consumer_retry_backoff_s=0.01)
    sla = create_app(SlaSettings(app_id=app_id, kafka=kafka, policy_file=None, web_enabled=False,
                                 data_dir="/tmp/safeguard-sla-tests"))
    buffer = sla.app.producer.buffer
    send = buffer._send_pending

    async def handoff(fut: Any) -> None:
        if not flag.exists():
            await send(fut)

    buffer._send_pending = handoff  # bound by the buffer's task when the worker starts
    await sla.app.start()
    counted, topic = -1, prefix + topics.TELEMETRY_REQUESTS
    while True:
        status = sla.tables.service_to_status.get("shop") or {}
        now = (sla.counters["sla_events_total"][topic], len(status.get("seconds", [])))
        if now != counted:
            counted = now
            print(f"counted {now[0]} seconds {sorted(int(s[0]) for s in status.get('seconds', []))}", flush=True)
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
