"""Blue/green on the running stack (issue 11): `safeguard deploy` of the demo's v2 with a canary while
clients keep calling the app; the feature turned on during the canary has a bug; Safeguard sees the
canary's errors, rolls the traffic back, kills the feature and records it in one incident, and the
switch itself loses no request. Then `safeguard rollback` undoes the rest (Step 4 in one command),
and `safeguard switch` moves traffic both ways under load with no failed request."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.config import load_config
from deploy.app import load_app
from deploy.traffic import make_traffic

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SAFEGUARD = str(Path(sys.executable).parent / "safeguard")
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")


@pytest.fixture(scope="module")
def admin() -> dict[str, str]:
    token = load_config().token
    assert token, "no admin token: run `make up`"
    return {"Authorization": f"Bearer {token}", "X-Safeguard-Actor": "test_deploy"}


@pytest.fixture
def blue_live() -> Iterator[None]:
    """Every test starts and ends with blue on v1 taking all traffic and the schema at v1."""
    def reset() -> None:
        asyncio.run(_reset())
    reset()
    yield
    reset()


async def _reset() -> None:
    from deploy import migrations
    from deploy.instances import make_instances, running_version
    from deploy.settings import DeploySettings

    spec, dsn = load_app("demo"), DeploySettings().dsn
    await make_traffic(spec).switch("blue")
    for colour in spec.colours:
        if await running_version(spec, colour) != "v1":
            await make_instances(spec).start(colour, "v1")
    while [s.version for s in await migrations.status(dsn=dsn, schema="demo", directory=spec.migrations)
           if s.applied][-1] > "0001_items":
        await migrations.rollback(dsn=dsn, schema="demo", directory=spec.migrations)


async def _cli(*args: str) -> tuple[int, dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(SAFEGUARD, *args, "--json", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert out.strip(), f"safeguard {' '.join(args)} printed nothing; stderr: {err.decode()[-2000:]}"
    return int(proc.returncode or 0), json.loads(out)


@asynccontextmanager
async def clients(url: str, *, paths: list[str], workers: int = 6) -> AsyncIterator[Counter[str]]:
    """Keep-alive clients on loopback until the block ends; counts answers by status, transport errors
    as `error:<kind>`."""
    seen: Counter[str] = Counter()
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                path = paths[i % len(paths)].format(user=f"u{n}-{i % 50}")
                i += 1
                try:
                    r = await http.get(path)
                    seen[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    seen[f"error:{type(exc).__name__}"] += 1
                await asyncio.sleep(0.1)  # ~60 requests/s in all: under the demo's 100/s per client (429)
    tasks = [asyncio.create_task(worker(n)) for n in range(workers)]
    try:
        yield seen
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def lost(seen: Counter[str]) -> dict[str, int]:
    """What the switch itself would be to blame for: transport errors and gateway answers."""
    return {k: v for k, v in seen.items() if k.startswith("error:") or k in ("502", "503", "504")}


async def test_canary_with_a_buggy_feature_rolls_back_by_itself_into_one_incident(blue_live: None,
                                                                                 admin: dict[str, str]) -> None:
    spec = load_app("demo")
    traffic = make_traffic(spec)
    since = datetime.now(UTC)

    def ours(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in incidents if i["service"] == "demo" and datetime.fromisoformat(i["opened_at"]) >= since
                and any("deploy v2 rolled back" in e["text"] for e in i.get("timeline", []))]
    async with httpx.AsyncClient(base_url=FRONT, headers=admin, timeout=10) as api:
        async with clients(spec.url, paths=["/api/streaks?user={user}", "/", "/api/items"]) as seen:
            deploy = asyncio.create_task(_cli("deploy", "--version", "v2", "--canary", "10,50,100", "--bake", "30s"))
            deadline = time.monotonic() + 120
            while (await traffic.weights())["green"] == 0:  # the canary step began: turn the feature on
                assert not deploy.done(), f"deploy ended before any traffic moved: {deploy.result()}"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            t_on = time.monotonic()
            r = await api.post("/api/flags/streaks/enable", json={"reason": "try streaks on the canary"})
            assert r.status_code == 200, r.text
            code, result = await deploy
            took = time.monotonic() - t_on
        assert code == 1 and result["status"] == "rolled_back", result
        assert "canary demo-green: error rate" in str(result["reason"]) or "sla trigger" in str(result["reason"])
        assert await traffic.weights() == {"blue": 100, "green": 0}
        flag = (await api.get("/api/flags/streaks")).json()
        assert flag["state"] == "DISABLED" and flag.get("killed"), flag
        assert lost(seen) == {}, f"the switch lost requests: {dict(seen)}"
        assert seen["500"] > 0, "the bug never showed: nothing to detect"
        print(f"feature on -> traffic back on blue: {took:.1f}s; answers {dict(seen)}")

        incident = None
        for _ in range(60):  # the notifier reads deploy.events
            found = ours((await api.get("/api/incidents")).json())
            if found:
                incident = found[0]
                break
            await asyncio.sleep(0.5)
        assert incident is not None, "the rollback is in no incident"
        assert incident["status"] in ("mitigated", "resolved")

        # Step 4 in one command: the database back to v1's schema, green back on v1
        code, undone = await _cli("rollback", "--reason", "test: undo v2")
        assert code == 0 and undone["database_to"] == "0001_items", undone
        await asyncio.sleep(2)  # the second rollback's event is read too
        incidents = ours((await api.get("/api/incidents")).json())
        assert len({i["incident_id"] for i in incidents}) == 1, f"the rollback was split over incidents: {incidents}"
        [joined] = incidents
        assert sum(e["kind"] == "action" and "deploy v2 rolled back" in e["text"] for e in joined["timeline"]) == 2, joined


async def test_switch_both_ways_under_load_loses_no_request(blue_live: None) -> None:
    spec = load_app("demo")
    async with clients(spec.url, paths=["/", "/api/items"]) as seen:
        await asyncio.sleep(1)
        code, there = await _cli("switch", "green")
        assert code == 0 and there["colour"] == "green"
        await asyncio.sleep(1)
        code, back = await _cli("switch", "blue")
        assert code == 0
        await asyncio.sleep(1)
    assert lost(seen) == {} and seen["200"] > 50, dict(seen)
    print(f"switch to green {there['switch_ms']} ms, back {back['switch_ms']} ms; answers {dict(seen)}")
