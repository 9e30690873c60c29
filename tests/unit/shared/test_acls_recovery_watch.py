"""Recovery verifies its effects (services/recovery/health_watch.py) by reading the SDK's reports on
`health.checks` with its own login: the broker must let it (found by helper F; the watch retried forever)."""

from __future__ import annotations

from shared import topics
from shared.kafka.acls import Acl, Operation, Resource, acls


def test_recovery_may_read_the_health_reports_it_verifies_effects_with() -> None:
    granted = acls(prefix="p.")
    assert Acl("recovery", Resource.TOPIC, "p." + topics.HEALTH_CHECKS, Operation.READ) in granted
    assert Acl("recovery", Resource.TOPIC, "p." + topics.HEALTH_CHECKS, Operation.WRITE) not in granted
