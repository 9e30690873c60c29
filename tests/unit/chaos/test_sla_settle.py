"""`make chaos` reads the SLA processor's count of a fault's requests once it is settled (`count_settled`)."""

from __future__ import annotations

from chaos.runner import SETTLED_POLLS, count_settled


def test_a_count_standing_still_through_a_rebalance_is_not_settled() -> None:
    """After kill -9 sla the count stands still until Faust's 10 s session timeout hands the partitions back
    (2026-12-01: 380 of 960 read as settled after 4 s; the processor counted all 960 a little later)."""
    pause = [380] * 24  # 12 s at one poll every 0.5 s
    assert not any(count_settled(pause[:i], 960) for i in range(1, len(pause) + 1))
    assert count_settled([*pause, 700, 960], 960)


def test_a_count_that_never_comes_is_settled_after_20_s() -> None:
    assert not count_settled([900] * (SETTLED_POLLS - 1), 960)
    assert count_settled([900] * SETTLED_POLLS, 960)
    assert not count_settled([None] * SETTLED_POLLS, 960)
