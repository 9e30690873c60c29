from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.notifier.policy import PolicyError, load_policy
from tests.unit.notifier.conftest import CONFIG


def test_shipped_policy_matches_the_runbook() -> None:
    p = load_policy(CONFIG)
    assert [lv.name for lv in p.levels] == ["auto-recovery system", "on-call developer", "system administrator",
                                            "infrastructure team"]
    assert [lv.escalate_after for lv in p.levels] == [300, 900, 3600, None]
    assert (p.targets.auto_recovery, p.targets.manual_intervention, p.targets.full_restore) == (300, 900, 3600)


@pytest.mark.parametrize(("text", "field"), [
    ("max_trigger_age: soon", "max_trigger_age"),
    ("channels: {stakeholder: {url: ftp://x}}", "channels.stakeholder.url"),
    ("channels: {pager: {}}", "channels.pager"),
    ("webhook: {attempts: 0}", "webhook.attempts"),
    ("severity: {error_rate_high: huge}", "severity.error_rate_high"),
    ("levels: [{level: 1, name: a}]", "levels"),
])
def test_bad_policy_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=re.escape(f"field '{field}'")):
        load_policy(path)


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
