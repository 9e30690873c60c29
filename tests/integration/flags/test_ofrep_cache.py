"""OFREP answers are cached for repeated contexts, and a change is answered at once: a kill made between two
identical requests is what the second one gets (single and bulk; also when the kill came in by a refresh)."""

from __future__ import annotations

from services.flags.models import FlagRecord
from tests.integration.flags.conftest import ADMIN, Flags

BODY = b'{"context":{"targetingKey":"u-1","email":"u-1@example.com"}}'


async def test_a_kill_is_seen_at_once_by_a_repeated_context(flags: Flags) -> None:
    c = flags.client
    assert (await c.post("/api/flags/gamification/enable", headers=ADMIN)).status_code == 200
    single, bulk = "/ofrep/v1/evaluate/flags/gamification", "/ofrep/v1/evaluate/flags"
    for _ in range(3):  # the second and third come from the cache
        assert (await c.post(single, content=BODY)).json()["value"] is True
        on = await c.post(bulk, content=BODY)
        assert {f["key"]: f["value"] for f in on.json()["flags"]}["gamification"] is True
    assert (await c.post(bulk, content=BODY, headers={"If-None-Match": on.headers["etag"]})).status_code == 304

    assert (await c.post("/api/flags/gamification/kill", headers=ADMIN)).status_code == 200
    assert (await c.post(single, content=BODY)).json()["value"] is False
    off = await c.post(bulk, content=BODY, headers={"If-None-Match": on.headers["etag"]})
    assert off.status_code == 200 and off.headers["etag"] != on.headers["etag"]
    assert {f["key"]: f["value"] for f in off.json()["flags"]}["gamification"] is False


async def test_a_change_applied_from_elsewhere_empties_the_cache(flags: Flags) -> None:
    c, svc = flags.client, flags.service
    single = "/ofrep/v1/evaluate/flags/gamification"
    assert (await c.post(single, content=BODY)).json()["value"] is False
    entry = svc.snapshot.get("gamification")
    assert entry is not None
    rec = entry.record
    on = FlagRecord(**{**rec.model_dump(), "definition": {**rec.definition, "state": "ENABLED"},
                       "version": rec.version + 1, "revision": rec.revision + 1})
    svc.snapshot.apply("gamification", on)  # what a refresh from another instance's change does
    assert (await c.post(single, content=BODY)).json()["value"] is True
