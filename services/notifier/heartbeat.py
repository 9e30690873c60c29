"""Who watches the notifier: a heartbeat to a dead man's switch outside Safeguard.

The notifier pages people, so when it hangs nothing inside Safeguard can page about it. Alertmanager's answer is
its always-firing Watchdog alert routed to a service that pages when the alert stops arriving (Dead Man's Snitch,
healthchecks.io, PagerDuty and Opsgenie heartbeats, an Uptime Kuma push monitor). Here: with
`NOTIFIER_HEARTBEAT_URL` set, a GET to it every `NOTIFIER_HEARTBEAT_INTERVAL_S` (60 s) while the notifier is
healthy (no Kafka consumer of it dead or stuck: what its `/healthz` says). A hung, dead or stuck notifier stops
beating and that service pages. The URL carries its service's token: it is never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

__all__ = ["beat", "run"]

log = logging.getLogger(__name__)


async def beat(http: httpx.AsyncClient, url: str, *, healthy: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """One heartbeat, sent only while `healthy()`; whether it was delivered (2xx)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs each request's URL at INFO
    if not healthy():
        log.warning("heartbeat withheld: a Kafka consumer of the notifier is dead or stuck (see /healthz)")
        return False
    try:
        r = await http.get(url, timeout=timeout_s)
        r.raise_for_status()
    except httpx.HTTPStatusError as exc:
        log.warning("heartbeat not taken: the dead man's switch answered %d", exc.response.status_code)
        return False
    except httpx.HTTPError as exc:
        log.warning("heartbeat not delivered: %s", type(exc).__name__)  # not str(exc): it would name the URL
        return False
    return True


async def run(http: httpx.AsyncClient, url: str, *, interval_s: float, healthy: Callable[[], bool]) -> None:
    while True:
        await beat(http, url, healthy=healthy)
        await asyncio.sleep(interval_s)
