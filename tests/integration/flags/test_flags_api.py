"""The flag service against real Postgres, Redis and Kafka: API, audit, rollout, kill, runbook, events."""

from __future__ import annotations

import asyncio

import mmh3
import cbor2

from shared.events import FlagChanged, FlagSnapshot
from shared.testing.kafka import expect_events, expect_records
from shared.topics import FLAGS_CHANGES, FLAGS_STATE
from tests.integration.flags.conftest import ADMIN, Flags


async def ofrep(f: Flags, key: str, ctx: dict | None = None) -> dict:
    r = await f.client.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": ctx or {}})
    return {"status": r.status_code, **r.json()}


async def test_seeded_gamification_is_new_and_off(flags: Flags) -> None:
    r = await flags.client.get("/api/flags/gamification")
    assert r.status_code == 200
    assert r.json()["new"] is True and r.json()["state"] == "DISABLED"
    assert await ofrep(flags, "gamification", {"targetingKey": "u"}) == {
        "status": 200, "key": "gamification", "reason": "DISABLED", "variant": "off", "value": False}


async def test_runbook_curl_without_content_type_or_token(flags: Flags) -> None:
    await flags.client.post("/api/flags/gamification/enable", headers=ADMIN)
    r = await flags.client.post("/api/system/status", content=b'{"feature": "gamification", "enabled": false}',
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["actor"] == "loopback:127.0.0.1"
    assert (await ofrep(flags, "gamification"))["value"] is False
    audit = (await flags.client.get("/api/flags/gamification/audit", headers=ADMIN)).json()
    assert audit[0]["action"] == "killed" and audit[0]["actor"] == "loopback:127.0.0.1"
    assert audit[0]["before"]["definition"]["state"] == "ENABLED"
    assert audit[0]["after"]["definition"]["state"] == "DISABLED"


async def test_runbook_refuses_remote_caller_behind_proxy(flags: Flags) -> None:
    r = await flags.client.post("/api/system/status", content=b'{"feature": "gamification", "enabled": true}',
                                headers={"X-Forwarded-For": "203.0.113.5"})
    assert r.status_code == 401
    assert (await flags.client.get("/api/flags/gamification")).json()["state"] == "DISABLED"


async def test_runbook_bad_input(flags: Flags) -> None:
    c = flags.client
    assert (await c.post("/api/system/status", content=b"feature=gamification")).status_code == 400
    r = await c.post("/api/system/status", content=b'{"feature": "gamification", "enabled": "no"}')
    assert r.status_code == 422 and "enabled" in r.text
    r = await c.post("/api/system/status", content=b'{"feature": "nope", "enabled": false}')
    assert r.status_code == 404 and r.json()["errorCode"] == "FLAG_NOT_FOUND"


async def test_changes_need_the_admin_token(flags: Flags) -> None:
    r = await flags.client.post("/api/flags", json={"key": "x1"})
    assert r.status_code == 401
    r = await flags.client.post("/api/flags/gamification/kill", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


async def test_create_defaults_update_delete_and_audit(flags: Flags) -> None:
    c = flags.client
    r = await c.post("/api/flags", json={"key": "checkout-v2", "reason": "new checkout"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["state"], body["new"], body["offVariant"], body["version"]) == ("DISABLED", True, "off", 1)
    assert (await c.post("/api/flags", json={"key": "checkout-v2"}, headers=ADMIN)).status_code == 409
    r = await c.patch("/api/flags/checkout-v2", json={"state": "ENABLED", "reason": "go"}, headers=ADMIN)
    assert r.json()["state"] == "ENABLED" and r.json()["version"] == 2
    assert (await ofrep(flags, "checkout-v2"))["value"] is True
    assert (await c.delete("/api/flags/checkout-v2?reason=done", headers=ADMIN)).status_code == 204
    assert (await ofrep(flags, "checkout-v2"))["status"] == 404
    assert (await c.get("/api/flags/checkout-v2")).status_code == 404
    audit = (await c.get("/api/flags/checkout-v2/audit", headers=ADMIN)).json()
    assert [a["action"] for a in audit] == ["deleted", "updated", "created"]
    assert audit[0]["reason"] == "done" and audit[0]["after"] is None and audit[2]["actor"] == "admin"


async def test_bad_definitions_say_which_field(flags: Flags) -> None:
    c = flags.client
    cases = [
        ({"key": "b1", "variants": {"a": "x", "b": "y"}, "defaultVariant": "a"}, "offVariant"),
        ({"key": "b2", "defaultVariant": "maybe"}, "defaultVariant"),
        ({"key": "b3", "targeting": {"nonsense_op": [1]}}, "targeting"),
        ({"key": "b4 bad key"}, "key"),
        ({"key": "b5", "variants": {}}, "variants"),
    ]
    for body, field in cases:
        r = await c.post("/api/flags", json=body, headers=ADMIN)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text, (field, r.text)
    r = await c.post("/api/flags", content=b"{not json", headers=ADMIN)
    assert r.status_code == 400
    await c.post("/api/flags", json={"key": "r1"}, headers=ADMIN)
    for pct in (-1, 101, "ten"):
        r = await c.post("/api/flags/r1/rollout", json={"percent": pct}, headers=ADMIN)
        assert r.status_code == 422 and "percent" in r.text


def bucket(flag: str, user: str) -> int:
    return (mmh3.hash(cbor2.dumps([flag, user], canonical=True), signed=False) * 10_000) >> 32


async def test_rollout_is_sticky_and_monotonic(flags: Flags) -> None:
    c = flags.client
    await c.post("/api/flags", json={"key": "ramp"}, headers=ADMIN)
    users = [f"user-{i}" for i in range(400)]
    seen: dict[int, set[str]] = {}
    for pct in (10, 50, 100):
        r = await c.post("/api/flags/ramp/rollout", json={"percent": pct, "reason": f"{pct}%"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["rolloutPercent"] == pct
        bulk = [(u, flags.service.evaluate("ramp", {"targetingKey": u})) for u in users]
        seen[pct] = {u for u, res in bulk if res and res.value is True}
    assert seen[10] <= seen[50] <= seen[100] == set(users)
    assert 20 <= len(seen[10]) <= 65 and 160 <= len(seen[50]) <= 240
    assert seen[10] == {u for u in users if bucket("ramp", u) < 1000}  # flagd's bucketing, not ours
    no_key = await ofrep(flags, "ramp")
    assert no_key["value"] is True  # 100 %: everyone


async def test_kill_all_new_only_kills_new_flags_that_are_on(flags: Flags) -> None:
    c = flags.client
    await c.post("/api/flags", json={"key": "n1", "state": "ENABLED"}, headers=ADMIN)
    await c.post("/api/flags", json={"key": "n2", "state": "ENABLED"}, headers=ADMIN)
    await c.post("/api/flags", json={"key": "old", "state": "ENABLED", "new": False}, headers=ADMIN)
    r = await c.post("/api/flags/_kill-new", json={"reason": "error rate > 5%"}, headers=ADMIN)
    assert r.status_code == 200 and sorted(r.json()["killed"]) == ["n1", "n2"]
    assert (await ofrep(flags, "n1"))["value"] is False
    assert (await ofrep(flags, "old"))["value"] is True
    assert (await c.get("/api/flags/n2")).json()["killed"] is True


async def test_changes_go_to_kafka_with_tombstone(flags: Flags) -> None:
    c = flags.client
    await c.post("/api/flags", json={"key": "evt"}, headers=ADMIN)
    await c.post("/api/flags/evt/kill", json={"reason": "because"}, headers=ADMIN)
    await c.delete("/api/flags/evt", headers=ADMIN)
    boot = flags.settings.kafka.bootstrap_servers
    prefix = flags.settings.kafka.topic_prefix
    changes = await expect_events(boot, prefix + FLAGS_CHANGES, count=3,
                                  where=lambda e: isinstance(e, FlagChanged) and e.flag_key == "evt")
    assert [e.action for e in changes] == ["created", "killed", "deleted"]
    assert changes[1].actor == "admin" and changes[1].reason == "because"
    assert changes[1].before["definition"]["state"] == "DISABLED"
    state = await expect_records(boot, prefix + FLAGS_STATE, count=3, where=lambda r: r.key == b"evt")
    assert state[-1].value is None  # tombstone
    snap = FlagSnapshot.model_validate_json(state[1].value)
    assert snap.definition["state"] == "DISABLED" and snap.definition["killed"] is True


async def test_scheduled_change_runs_and_is_audited(flags: Flags) -> None:
    from datetime import UTC, datetime, timedelta
    c = flags.client
    await c.post("/api/flags", json={"key": "later"}, headers=ADMIN)
    at = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    r = await c.post("/api/flags/later/schedule", json={"action": "rollout", "percent": 50, "at": at}, headers=ADMIN)
    assert r.status_code == 201, r.text
    for _ in range(50):
        sched = (await c.get("/api/flags/later/schedule", headers=ADMIN)).json()
        if sched[0]["status"] != "pending" and sched[0]["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert sched[0]["status"] == "done"
    assert flags.service.get("later").rollout_percent == 50
    audit = (await c.get("/api/flags/later/audit", headers=ADMIN)).json()
    assert audit[0]["actor"] == "scheduler:admin" and audit[0]["action"] == "rollout"
    r = await c.post("/api/flags/later/schedule", json={"action": "rollout", "at": at}, headers=ADMIN)
    assert r.status_code == 422


async def test_ofrep_bulk_etag(flags: Flags) -> None:
    c = flags.client
    r1 = await c.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "a"}})
    etag = r1.headers["etag"]
    assert any(f["key"] == "gamification" for f in r1.json()["flags"])
    same = await c.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "a"}},
                        headers={"If-None-Match": etag})
    assert same.status_code == 304
    other = await c.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "b"}},
                         headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    await c.post("/api/flags/gamification/enable", headers=ADMIN)
    changed = await c.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "a"}},
                           headers={"If-None-Match": etag})
    assert changed.status_code == 200


async def test_ofrep_bad_input(flags: Flags) -> None:
    c = flags.client
    r = await c.post("/ofrep/v1/evaluate/flags/nope", json={"context": {}})
    assert r.status_code == 404 and r.json()["errorCode"] == "FLAG_NOT_FOUND"
    r = await c.post("/ofrep/v1/evaluate/flags/gamification", content=b"{{{")
    assert r.status_code == 400 and r.json()["errorCode"] == "INVALID_CONTEXT"
    r = await c.post("/ofrep/v1/evaluate/flags/gamification", json={"context": [1]})
    assert r.status_code == 400
