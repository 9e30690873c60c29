from __future__ import annotations

import pytest

from shared.humanize import describe_clear, describe_trigger, duration_ms, percent


@pytest.mark.parametrize(("trigger", "value", "threshold", "text"), [
    ("error_rate_high", 0.156997, 0.05, "error rate 15.7 % > 5 %"),
    ("error_rate_high", 0.3, 0.05, "error rate 30 % > 5 %"),
    ("latency_high", 6234.0, 5000.0, "response time 6.23 s > 5 s"),
    ("memory_high", 91.26, 90.0, "memory 91.3 % > 90 %"),
    ("db_connection_lost", 1.0, 0.5, "database connection lost"),
    ("budget_burn", 1.5, 1.0, "error budget burn 1.5x > 1x the page rate"),
])
def test_a_trigger_reads_in_its_unit(trigger: str, value: float, threshold: float, text: str) -> None:
    assert describe_trigger(trigger, value, threshold) == text


def test_a_clear_reads_the_other_way() -> None:
    assert describe_clear("error_rate_high", 0.004, 0.025) == "error rate 0.4 % <= 2.5 %"
    assert describe_clear("db_connection_lost", 0.0, 0.5) == "database connection back"


def test_small_values() -> None:
    assert percent(0.0) == "0 %" and duration_ms(812.4) == "812 ms" and duration_ms(1000) == "1 s"
