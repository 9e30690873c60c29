"""disable_new_features is verified through OFREP (issue 14): recovery kills the new flags of a real flags app
(own Postgres schema, Redis prefix, Kafka prefix) and publishes RecoveryActionVerified only once every killed
flag evaluates off, as an app would evaluate it."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from services.recovery.flags_client import HttpFlagsClient
from services.recovery.operator import Operator
from services.recovery.policy import load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from services.recovery.verify import EffectChecks, OfrepProbe
from shared.events import RecoveryActionVerified, TriggerFired
from shared.testing import InMemoryPublisher
from tests.integration.flags.conftest import ADMIN, Flags, flags  # noqa: F401 - the fixture

CONFIG = Path(__file__).resolve().parents[3] / "config" / "recovery.yaml"
TOKEN = SecretStr(ADMIN["Authorization"].removeprefix("Bearer "))


async def test_killed_flags_are_verified_off_through_ofrep(flags: Flags, unique: str) -> None:  # noqa: F811
    key = f"beta-{unique}"
    r = await flags.client.post("/api/flags", json={"key": key, "state": "ENABLED", "new": True}, headers=ADMIN)
    assert r.status_code == 201, r.text
    probe = OfrepProbe(flags.client, flags_url="http://flags", token=TOKEN)
    assert not await probe.serves_off(key)  # on before the action
    pub = InMemoryPublisher()
    operator = Operator(verifier=EffectChecks(watch=None, flags=probe, timeout_s=20, poll_s=0.05))
    svc = RecoveryService(policy=load_policy(CONFIG), publisher=pub, audit=MemoryAuditStore(), operator=operator,
                          flags=HttpFlagsClient(flags.client, flags_url="http://flags", token=TOKEN))
    rec = await svc.recover_from_trigger(TriggerFired(service="demo", trigger="error_rate_high", episode_id="e1",
                                                      value=0.3, threshold=0.05, window_seconds=5))
    await operator.settled()
    [verified] = pub.of_type(RecoveryActionVerified)
    assert rec is not None and key in rec.detail
    assert key in verified.effect and verified.effect.endswith("off (reason DISABLED)")
    assert await probe.serves_off(key)
    print(f"\ndisable_new_features: action -> verified effect (OFREP) {verified.seconds:.2f}s")


async def test_a_flag_still_on_is_not_verified(flags: Flags, unique: str) -> None:  # noqa: F811
    key = f"gamma-{unique}"
    r = await flags.client.post("/api/flags", json={"key": key, "state": "ENABLED", "new": False}, headers=ADMIN)
    assert r.status_code == 201, r.text
    checks = EffectChecks(watch=None, flags=OfrepProbe(flags.client, flags_url="http://flags", token=TOKEN),
                          timeout_s=0.5, poll_s=0.05)
    assert await checks._serve_off([key]) is None
