"""Verify the effect of an action, not only the clear: what an operator would look at after acting.

- restart_process: the executor saw a new process that answers (its `Restarted` results); through the
  SDK's clean exit, each instance reports a new PID on health.checks
- restart_connection_pool: a ProcessStatsReported after the command with that pool connected
- open_circuit_breaker: the breaker is open (CircuitBreakerStateChanged, or a stats report saying so)
- disable_new_features: every killed flag serves off when evaluated through OFREP

Each check answers what it saw (a sentence for the audit and the incident), or None within the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import httpx
from pydantic import SecretStr

from services.recovery.ports import HealthReports, Report
from services.recovery.models import ActionRecord
from services.recovery.policy import ActionRule
from shared.events import CircuitBreakerStateChanged, ProcessStatsReported

__all__ = ["Verifier", "EffectChecks", "OfrepProbe", "FlagsProbe"]

_OPEN = ("open", "forced_open")


class FlagsProbe(Protocol):
    async def serves_off(self, key: str) -> bool: ...


class Verifier(Protocol):
    async def effect(self, rec: ActionRecord, *, rule: ActionRule, since: datetime, killed: list[str],
                     pids: dict[str, int]) -> str | None: ...


class OfrepProbe:
    """Evaluates a flag through OFREP as an app would (empty context): off is reason DISABLED."""

    def __init__(self, http: httpx.AsyncClient, *, flags_url: str, token: SecretStr | None) -> None:
        self.http, self.url = http, flags_url.rstrip("/") + "/ofrep/v1/evaluate/flags/"
        self.headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    async def serves_off(self, key: str) -> bool:
        try:
            r = await self.http.post(self.url + key, json={"context": {}}, headers=self.headers)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("reason") == "DISABLED"


def _for(rec: ActionRecord, e: Report) -> bool:
    return e.service == rec.service and (rec.instance is None or e.instance == rec.instance)


class EffectChecks:
    def __init__(self, *, watch: HealthReports | None, flags: FlagsProbe | None, timeout_s: float = 60.0,
                 poll_s: float = 0.2) -> None:
        self.watch, self.flags, self.timeout_s, self.poll_s = watch, flags, timeout_s, poll_s

    async def effect(self, rec: ActionRecord, *, rule: ActionRule, since: datetime, killed: list[str],
                     pids: dict[str, int]) -> str | None:
        """`killed`: the flags a disable_new_features turned off; `pids`: instance -> PID before a restart
        sent to the SDK (an executor's restart is verified by the executor itself)."""
        if rec.action == "disable_new_features":
            return await self._serve_off(killed)
        if self.watch is None:
            return None
        if rec.action == "open_circuit_breaker":
            return await self._breaker_open(rec, rule.breaker, since)
        if rec.action == "restart_connection_pool":
            return await self._pool_connected(rec, rule.pool, since)
        if rec.action == "restart_process":
            return await self._new_pids(rec, since, pids)
        return None

    async def _serve_off(self, killed: list[str]) -> str | None:
        if not killed or self.flags is None:
            return None  # nothing was turned off: nothing to see
        deadline = time.monotonic() + self.timeout_s
        left = list(killed)
        while left and time.monotonic() < deadline:
            left = [k for k in left if not await self.flags.serves_off(k)]
            if left:
                await asyncio.sleep(self.poll_s)
        return None if left else f"OFREP serves {', '.join(killed)} off (reason DISABLED)"

    async def _breaker_open(self, rec: ActionRecord, breaker: str, since: datetime) -> str | None:
        assert self.watch is not None

        def is_open(e: Report) -> bool:
            if isinstance(e, CircuitBreakerStateChanged):
                return _for(rec, e) and e.breaker == breaker and e.to_state in _OPEN
            return _for(rec, e) and e.breakers.get(breaker) in _OPEN
        seen = await self.watch.wait_for(is_open, since=since, timeout_s=self.timeout_s)
        return None if seen is None else f"breaker {breaker} open on {seen.instance}"

    async def _pool_connected(self, rec: ActionRecord, pool: str, since: datetime) -> str | None:
        assert self.watch is not None

        def connected(e: Report) -> bool:
            return isinstance(e, ProcessStatsReported) and _for(rec, e) and any(
                p.name == pool and p.connected and p.size > 0 for p in e.pools)
        seen = await self.watch.wait_for(connected, since=since, timeout_s=self.timeout_s)
        if not isinstance(seen, ProcessStatsReported):
            return None
        p = next(p for p in seen.pools if p.name == pool)
        return f"pool {pool} connected again on {seen.instance} ({p.size} connections, {p.idle} idle)"

    async def _new_pids(self, rec: ActionRecord, since: datetime, pids: dict[str, int]) -> str | None:
        assert self.watch is not None
        if not pids:
            return None  # no PID known before: a new one cannot be told from the old
        out = []
        for instance, old in sorted(pids.items()):
            seen = await self.watch.wait_for(_new_pid(rec.service, instance, old), since=since,
                                             timeout_s=self.timeout_s)
            if not isinstance(seen, ProcessStatsReported):
                return None
            out.append(f"{instance}: pid {old} -> {seen.pid}")
        return "new process reporting: " + "; ".join(out)


def _new_pid(service: str, instance: str, old: int) -> Callable[[Report], bool]:
    return lambda e: isinstance(e, ProcessStatsReported) and e.service == service and e.instance == instance \
        and e.pid != old
