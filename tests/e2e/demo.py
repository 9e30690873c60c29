"""Traffic into the demo and putting a flag back as it was: shared by the e2e runbook tests and
`bench/incident_mitigated.py` (one copy, so the bench measures what the tests check)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["DEMO", "FRONT", "Traffic", "restore_flag"]

FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
DEMO = os.environ.get("SAFEGUARD_DEMO_URL", "http://127.0.0.1:8100")


@dataclass
class Traffic:
    """Steady, bounded traffic through HAProxy: `rps` requests per second, `budget` requests at most.

    `first_at` is when the first request of the current count went out (monotonic), `first_bad` the wall-clock
    time of the first 500. `lenient` counts a transport error as status 0 instead of raising it."""

    http: httpx.AsyncClient
    path: str = "/"
    rps: float = 40.0
    budget: int = 1500
    lenient: bool = False
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    first_at: float | None = None
    first_bad: float = 0.0
    _next: float = 0.0

    async def tick(self) -> None:
        """Send the requests that are due now (called between polls of whatever the caller waits for)."""
        now = time.monotonic()
        if not self._next:
            self._next = now
        due: list[Awaitable[httpx.Response]] = []
        while self._next <= now and self.sent + len(due) < self.budget:
            due.append(self.http.get(f"{DEMO}{self.path}"))
            self._next += 1 / self.rps
        if not due:
            if self.sent >= self.budget:
                raise AssertionError(f"traffic budget of {self.budget} requests spent")
            return
        if self.first_at is None:
            self.first_at = now
        self.sent += len(due)
        for r in await asyncio.gather(*due, return_exceptions=self.lenient):
            status = r.status_code if isinstance(r, httpx.Response) else 0
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 500 and not self.first_bad:
                self.first_bad = time.time()

    async def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self.tick()
            await asyncio.sleep(0.02)

    def reset_counts(self) -> None:
        self.statuses = {}
        self.first_at = None


async def restore_flag(http: httpx.AsyncClient, flag: str, found: dict[str, Any], *, auth: dict[str, str],
                       reason: str) -> None:
    """Put `flag` back as `found` (its `GET /api/flags/{flag}` before): the rollout, on, killed or off."""
    body = {"reason": reason}
    if found.get("state") == "ENABLED" and found.get("rolloutPercent") is not None:
        r = await http.post(f"{FRONT}/api/flags/{flag}/rollout", headers=auth,
                            json={"percent": found["rolloutPercent"], **body})
    else:
        verb = "enable" if found.get("state") == "ENABLED" else "kill" if found.get("killed") else "disable"
        r = await http.post(f"{FRONT}/api/flags/{flag}/{verb}", headers=auth, json=body)
    assert r.status_code == 200, r.text
    now = (await http.get(f"{FRONT}/api/flags/{flag}")).json()
    assert (now["state"], now["killed"]) == (found["state"], found["killed"]), (found, now)
