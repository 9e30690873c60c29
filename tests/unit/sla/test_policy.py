from pathlib import Path

import pytest

from services.sla.policy import PolicyError, SlaPolicy, load_policy, parse_duration

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_policy_is_valid_and_matches_the_runbook() -> None:
    policy = load_policy(ROOT / "config" / "sla.yaml")
    t = policy.triggers
    assert (t.error_rate_high.threshold, t.latency_high.threshold, t.memory_high.threshold) == (0.05, 5000, 90)
    assert policy.budget.objective == 0.999 and policy.budget.period == 30 * 86400
    assert [a.name for a in policy.budget.alerts] == ["page:1h/5m", "page:6h/30m", "ticket:1d/2h", "ticket:3d/6h"]
    assert (policy.objectives.response_ms, policy.objectives.db_query_ms, policy.objectives.page_load_ms) == (2000, 500, 3000)
    assert (policy.event_time.max_ahead, policy.event_time.max_behind) == (10, 7 * 86400)


@pytest.mark.parametrize(("yaml_text", "field"), [
    ("triggers: {error_rate_high: {threshold: 0.05, window: 0, min_samples: 20}}", "triggers.error_rate_high.window"),
    ("triggers: {memory_high: {threshold: 90, window: 10s, min_samples: 0}}", "triggers.memory_high.min_samples"),
    ("budget: {objective: 1.5}", "budget.objective"),
    ("budget: {alerts: [{long: 5m, short: 1h, factor: 1, severity: page}]}", "budget"),
    ("triggers: {latency_high: {threshold: 5000, window: soon, min_samples: 1}}", "triggers.latency_high.window"),
    ("maintenance: [{kind: weekly, days: [tue], start: '10:00', end: '11:00', timezone: Asia/Bangkok}]", "maintenance[0]"),
    ("business_hours: {timezone: Mars/Olympus}", "business_hours.timezone"),
    ("tirggers: {}", "tirggers"),
    ("event_time: {max_ahead: 0}", "event_time.max_ahead"),
    ("event_time: {max_behind: forever}", "event_time.max_behind"),
    ("triggers: {latency_quantile: 0.8}", "triggers.latency_quantile"),
])
def test_a_bad_policy_names_the_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert field in str(err.value) and str(path) in str(err.value)


def test_missing_file_is_an_error_not_a_default(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_durations_and_maintenance_windows() -> None:
    assert [parse_duration(v) for v in (30, "90s", "5m", "1h", "3d", "1.5")] == [30, 90, 300, 3600, 259200, 1.5]
    policy = SlaPolicy.model_validate({"maintenance": [
        {"kind": "weekly", "days": ["sat"], "start": "23:00", "end": "01:00", "timezone": "Asia/Bangkok"}]})
    from datetime import datetime
    from zoneinfo import ZoneInfo
    bkk = ZoneInfo("Asia/Bangkok")
    assert policy.in_maintenance(datetime(2025, 1, 4, 23, 30, tzinfo=bkk))  # Saturday night
    assert policy.in_maintenance(datetime(2025, 1, 5, 0, 30, tzinfo=bkk))  # past midnight, Sunday
    assert not policy.in_maintenance(datetime(2025, 1, 5, 23, 30, tzinfo=bkk))
