"""Canary rollback on the running stack (`make bench B=deploy_canary`): demo v2 deployed with a canary
under a client loop, its buggy `streaks` feature turned on at the first step; measured: from the first
bad answer a client got to all traffic back on the old colour, and requests lost by the switches.
Baseline in the same run: a plain `safeguard switch` under the same loop (the floor of any rollback).
Leaves the demo as it found it (blue on v1, schema at v1)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx

from cli.config import load_config
from bench.report import record, runbook_limit
from deploy import migrations
from deploy.app import load_app
from deploy.instances import make_instances, running_version
from deploy.release import Plan, Release, Step
from deploy.settings import DeploySettings
from deploy.traffic import make_traffic
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings

WORKERS = 6
PATHS = ("/api/streaks?user=u{n}-{i}", "/", "/api/items")


class Loop:
    """Keep-alive clients on loopback, ~60 requests/s in all (under the demo's 100/s per client)."""

    def __init__(self, url: str) -> None:
        self.url, self.seen, self.first_500 = url, Counter[str](), None
        self._stop = asyncio.Event()

    async def _worker(self, n: int) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            i = 0
            while not self._stop.is_set():
                path = PATHS[i % len(PATHS)].format(n=n, i=i % 40)
                i += 1
                try:
                    status = str((await http.get(path)).status_code)
                except httpx.HTTPError as exc:
                    status = f"error:{type(exc).__name__}"
                self.seen[status] += 1
                if status == "500" and self.first_500 is None:
                    self.first_500 = time.monotonic()
                await asyncio.sleep(0.1)

    async def __aenter__(self) -> Loop:
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(WORKERS)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def lost(self) -> int:
        return sum(v for k, v in self.seen.items() if k.startswith("error:") or k in ("502", "503", "504"))


async def _reset(release: Release) -> None:
    spec = release.spec
    await release.traffic.switch("blue")
    for colour in spec.colours:
        if await running_version(spec, colour) != "v1":
            await release.instances.start(colour, "v1")
    while [s.version for s in await migrations.status(dsn=release.dsn, schema=spec.schema, directory=spec.migrations)
           if s.applied][-1] > spec.releases["v1"]["migration"]:
        await migrations.rollback(dsn=release.dsn, schema=spec.schema, directory=spec.migrations)


async def main() -> None:
    spec = load_app("demo")
    settings, kafka = DeploySettings(), KafkaSettings()
    token = load_config().token
    headers = {"Authorization": f"Bearer {token}", "X-Safeguard-Actor": "bench"}
    traffic = make_traffic(spec)
    async with KafkaPublisher.start(kafka, source="/safeguard/bench") as pub:
        release = Release(spec=spec, traffic=traffic, instances=make_instances(spec), kafka=kafka, dsn=settings.dsn,
                          backup_dir=settings.backup_dir, publish=pub.publish)
        await _reset(release)

        async with Loop(spec.url) as base:  # baseline: a plain switch there and back under the same loop
            await asyncio.sleep(1)
            there = await release.switch("green")
            await asyncio.sleep(1)
            back = await release.switch("blue")
            await asyncio.sleep(1)
        print(f"baseline switch under load: to green {there:.2f} ms, back {back:.2f} ms, "
              f"lost {base.lost()} of {sum(base.seen.values())} {dict(base.seen)}")

        steps: list[Step] = []
        moved: dict[str, float] = {}

        def seen(step: Step) -> None:
            steps.append(step)
            moved.setdefault(step.name, time.monotonic())
        release.report = seen
        async with Loop(spec.url) as loop, httpx.AsyncClient(base_url=load_config().front_url, headers=headers) as api:
            deploy = asyncio.create_task(release.deploy(Plan(version="v2", steps=(10, 50, 100), bake_s=60,
                                                             preflight=False, backup=True)))
            while "traffic 10%" not in moved and not deploy.done():
                await asyncio.sleep(0.05)
            await api.post("/api/flags/streaks/enable", json={"reason": "bench: streaks on the canary"})
            rec = await deploy
        back_at = moved.get("traffic back")
        if rec.status != "rolled_back" or back_at is None or loop.first_500 is None:
            print(f"canary: NOT rolled back ({rec.status}, first 500 {loop.first_500}); answers {dict(loop.seen)}")
        else:
            took = back_at - loop.first_500
            switch_ms = next(s.seconds for s in steps if s.name == "traffic back") * 1000
            print(f"canary 10% with a bug for 40% of its users: first bad answer -> all traffic back on blue "
                  f"{took:.2f} s (of which the switch {switch_ms:.2f} ms; detection waits for 20 canary requests "
                  f"in 1 s telemetry windows); lost by the switches {loop.lost()} of {sum(loop.seen.values())}; "
                  f"answers {dict(loop.seen)}")
            record("canary rollback: first bad answer -> all traffic back", took * 1000, "ms",
                   baseline="plain switch back under the same loop", baseline_value=max(back, 1e-3),
                   lower_is_better=True, note=f"lost {loop.lost()} of {sum(loop.seen.values())}")
            runbook_limit("canary rollback: first bad answer -> all traffic back", took, limit_s=60,
                          what="rollback within 1 min")
            print(f"ratio: canary rollback / plain switch {took * 1000 / max(back, 1e-3):.0f}x; "
                  f"runbook allows 60 s for a rollback: {took / 60:.3f} of it")
        print(f"reason: {rec.reason}")
        await _reset(release)
