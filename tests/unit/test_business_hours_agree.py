"""The runbook's business hours live in two policies: the SLA processor's (its static maintenance windows must
fall outside them, config/sla.yaml) and the notifier's (a window made through the API inside them is 409 unless
forced, config/notifier.yaml `maintenance.business_hours`). The files the stacks run must agree, or the same
window would be refused by one service and accepted by the other."""

from __future__ import annotations

from pathlib import Path

from services.notifier.policy import load_policy as notifier_policy
from services.sla.policy import load_policy as sla_policy

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_the_sla_and_notifier_policies_name_the_same_business_hours() -> None:
    sla = sla_policy(CONFIG / "sla.yaml").business_hours
    notifier = notifier_policy(CONFIG / "notifier.yaml").maintenance.business_hours
    assert (tuple(sla.days), sla.start, sla.end, sla.timezone) == \
        (tuple(notifier.days), notifier.start, notifier.end, notifier.timezone), (sla, notifier)
