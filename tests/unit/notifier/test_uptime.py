"""Daily uptime bars from incident intervals: no data before recording began, overlaps counted once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.notifier.uptime import DAYS, Outage, daily_uptime, uptime_ratio

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 30, tzinfo=UTC)


def test_days_before_recording_are_no_data_never_full_uptime() -> None:
    days = daily_uptime(outages=[], since=NOW - timedelta(days=2, hours=6), now=NOW)
    assert len(days) == DAYS and days[-1].day == date(2026, 11, 30) and days[0].day == date(2026, 9, 2)
    assert [d.uptime for d in days[:-3]] == [None] * (DAYS - 3)
    assert [d.uptime for d in days[-3:]] == [1.0, 1.0, 1.0]
    assert days[-3].observed_s == 18 * 3600 and days[-1].observed_s == 12 * 3600  # first and current day: partly
    assert all(d.uptime is None for d in daily_uptime(outages=[], since=None, now=NOW))
    assert uptime_ratio(daily_uptime(outages=[], since=None, now=NOW)) is None


def test_overlapping_incidents_count_once_and_an_open_one_runs_until_now() -> None:
    outages = [Outage("demo", "major", MIDNIGHT - timedelta(hours=20), MIDNIGHT - timedelta(hours=14)),
               Outage("demo", "critical", MIDNIGHT - timedelta(hours=18), MIDNIGHT - timedelta(hours=12)),
               Outage("demo", "minor", NOW - timedelta(hours=3), None)]
    days = daily_uptime(outages=outages, since=NOW - timedelta(days=10), now=NOW)
    yesterday, today = days[-2], days[-1]
    assert yesterday.down_s == 8 * 3600 and yesterday.uptime == 1 - 8 / 24 and yesterday.worst == "critical"
    assert today.down_s == 3 * 3600 and today.uptime == 1 - 3 / 12 and today.worst == "minor"
    assert days[-3].uptime == 1.0 and days[-3].worst is None
    ratio = uptime_ratio(days)
    assert ratio is not None and abs(ratio - (1 - 11 / (10 * 24))) < 1e-12


def test_an_incident_across_midnight_is_split_between_the_days() -> None:
    outages = [Outage("demo", "major", MIDNIGHT - timedelta(hours=2), MIDNIGHT + timedelta(hours=1))]
    days = daily_uptime(outages=outages, since=NOW - timedelta(days=5), now=NOW)
    assert (days[-2].down_s, days[-1].down_s) == (2 * 3600, 3600)
